"""Without the ``report`` extra (numpy, matplotlib) sgde still runs; what needs it says so.

Each check runs in a fresh interpreter whose import system refuses numpy, scipy and
matplotlib, as on a plain ``pip install sgde``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BLOCK = """
import importlib.abc, sys
class _Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"numpy", "scipy", "matplotlib"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _Missing())
"""


def _run(code: str, tmp_path: Path) -> dict[str, object]:
    script = tmp_path / "probe.py"
    script.write_text(BLOCK + code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_cli_runs_and_names_the_extra_where_needed(tmp_path: Path) -> None:
    plan = ROOT / "examples" / "duck_eggs.yaml"
    out = _run(
        f"""
import contextlib, io, json
from sgde.cli.app import app
from sgde.cli.common import run_cli
def call(*args):
    err, outp = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(outp):
        code = run_cli(app, list(args))
    return code, outp.getvalue() + err.getvalue()
help_code, _ = call("--help")
validate_code, _ = call("validate", {str(plan)!r})
synth_code, synth_text = call("synth", "--template", "gsmhard-0000", "--n", "2", "--out", "x.jsonl")
print(json.dumps({{"help": help_code, "validate": validate_code, "synth": synth_code,
                  "synth_text": synth_text}}))
""",
        tmp_path,
    )
    assert out["help"] == 0 and out["validate"] == 0
    assert out["synth"] == 2
    assert 'pip install "sgde[report]"' in str(out["synth_text"])
    assert "Traceback" not in str(out["synth_text"])


def test_report_needs_the_extra_and_says_so(tmp_path: Path) -> None:
    out = _run(
        """
import json
from pathlib import Path
from sgde.errors import UsageError
from sgde.evaluation.metrics import mcnemar
from sgde.evaluation.report import render_report
p = mcnemar([True] * 9 + [False], [False] * 9 + [True])[1]
try:
    render_report({"cells": [], "summary": []}, Path("out"))
except UsageError as exc:
    print(json.dumps({"error": str(exc), "p": p}))
""",
        tmp_path,
    )
    assert "matplotlib" in str(out["error"]) and "sgde[report]" in str(out["error"])
    assert 0 < float(str(out["p"])) < 0.05  # McNemar needs no scipy
