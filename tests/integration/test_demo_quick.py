"""``sgde demo --quick`` end to end on the real embedded models, at a reduced size.

Runs the real SmolLM2-135M student and Qwen2.5-Coder-1.5B teacher (llama.cpp) through the
whole demo — synthesis, baselines, an SGDe compile, evaluation, report — with 4 test items
and one compile iteration (hidden flags), so it takes a few minutes on 2 cores. Skipped when
the embedded models are not installed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sgde.cli.app import app
from sgde.errors import SgdeError
from sgde.evaluation.bench import DEFAULT_STUDENT, DEFAULT_TEACHER
from sgde.evaluation.demo import check_local_models

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(autouse=True)
def _models_installed() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        check_local_models([DEFAULT_STUDENT, DEFAULT_TEACHER])
    except SgdeError as exc:
        pytest.skip(f"embedded models not available: {exc.message}")


def test_quick_demo_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A fresh request cache: the teacher really runs (the rerun below then replays it).
    monkeypatch.setenv("SGDE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "demo"
    args = [
        "demo",
        "--quick",
        "--out",
        str(out),
        "--n-test",
        "4",
        "--max-iters",
        "1",
        "--methods",
        "direct,pal,sgde",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "report.html" in result.output

    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    methods = {row["method"]: row for row in results["summary"]}
    assert set(methods) == {"direct", "pal", "sgde"}
    for row in methods.values():
        assert row["n_items"] == 4 or row["errors"] == 1
    sgde = next(c for c in results["cells"] if c["cell"]["method"] == "sgde")
    if sgde["status"] == "ok":
        assert sgde["prepare"]["teacher_usage"]["total_tokens"] > 0
        assert sgde["prepare"]["plan"]
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") >= 3

    # a rerun resumes every finished cell instead of recomputing it
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "skipped" in again.output
