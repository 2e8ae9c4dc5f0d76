"""Every link in the committed Markdown (reports, docs, README) resolves to a committed file."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Markdown links and images ``[text](target)`` / ``![alt](target)``, and HTML src/href.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")
EXTERNAL = ("http://", "https://", "mailto:", "data:", "#")


def _committed(pattern: str) -> list[Path]:
    """Files under ``pattern`` that git tracks (outside a git checkout: the files present)."""
    out = subprocess.run(
        ["git", "ls-files", "--", pattern],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:  # not a git checkout (an sdist): fall back to the files present
        return sorted(p for p in ROOT.glob(pattern.replace("*", "**/*", 1)) if p.is_file())
    return [ROOT / line for line in out.stdout.splitlines() if (ROOT / line).exists()]


def _links(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    # Links inside fenced code blocks are examples, not links.
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    found = LINK.findall(text)
    if path.suffix == ".html":
        found += HTML_LINK.findall(text)
    return [link for link in found if not link.startswith(EXTERNAL)]


DOCUMENTS = [
    *_committed("benchmarks/results/*/report.md"),
    *_committed("benchmarks/results/*/report.html"),
    *_committed("docs/*.md"),
    *_committed("README.md"),
]


def test_there_are_committed_reports() -> None:
    assert any(p.name == "report.md" for p in DOCUMENTS)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_local_link_resolves(path: Path) -> None:
    committed = {p.resolve() for p in _committed("*")}
    missing = []
    for link in _links(path):
        target = (path.parent / link.split("#", 1)[0]).resolve()
        if target not in committed and not (target.is_dir() and target.is_relative_to(ROOT)):
            missing.append(link)
    assert not missing, f"{path.relative_to(ROOT)} links files that are not committed: {missing}"


# Files and documents that exist only in the developers' workspace, never in a user's copy.
PRIVATE_REFERENCES = re.compile(r"MODELS\.md|SGDE\.md|STYLE\.md|\bbrief §|\.\./shared|/work/shared")


def test_docs_and_docstrings_stand_alone() -> None:
    paths = [
        *_committed("docs/*.md"),
        *_committed("README.md"),
        *_committed("src/sgde/**/*.py"),
        *_committed("src/sgde/**/*.md"),
        *_committed("src/sgde/**/*.j2"),
        *_committed("examples/*"),
    ]
    cited = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()[:80]}"
        for path in paths
        if path.is_file()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if PRIVATE_REFERENCES.search(line)
    ]
    assert not cited, "state the fact instead of citing a file users do not have:\n" + "\n".join(
        cited
    )
