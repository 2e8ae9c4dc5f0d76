"""A typed-task bench on the real SmolLM2-135M student: the student alone on task families.

Three rows of two families (an integer output and a 3-output task) through ``run_bench``
with the minimal cold-start plan (no teacher call): the typed rows reach the real model, its
JSON-constrained answers come back typed and are scored by the task's metric. Seconds on
2 cores; skipped when the embedded student is not installed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sgde.errors import SgdeError
from sgde.evaluation.bench import DEFAULT_STUDENT, BenchConfig, run_bench_async
from sgde.evaluation.demo import check_local_models

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


@pytest.fixture(autouse=True)
def _student_installed() -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        check_local_models([DEFAULT_STUDENT])
    except SgdeError as exc:
        pytest.skip(f"embedded student not available: {exc.message}")


async def test_student_alone_on_two_families(tmp_path: Path) -> None:
    config = BenchConfig.model_validate(
        {
            "name": "typed-smoke",
            "student": DEFAULT_STUDENT,
            "tasks": ["letter-count", "rectangle"],
            "m": [3],
            "methods": ["student"],
            "method_options": {"student": {"draft": "minimal"}},
            "n_test": 3,
            "keep_traces": "all",
        }
    )
    outcome = await run_bench_async(config, tmp_path / "bench")
    cells = {c["cell"]["template"]: c for c in outcome.results["cells"]}
    assert all(c["status"] == "ok" for c in cells.values()), cells
    letters = cells["letter-count"]["eval"]["items"]
    assert len(letters) == 3
    assert all(isinstance(i["gold"], int) for i in letters)
    assert all(i["prediction"] is None or isinstance(i["prediction"], int) for i in letters)
    shapes = cells["rectangle"]["eval"]["items"]
    assert all(set(i["gold"]) == {"area", "perimeter", "is_square"} for i in shapes)
    assert all(set(i["prediction"]) == {"area", "perimeter", "is_square"} for i in shapes)
    for item in (*letters, *shapes):
        assert item["tokens"] > 0
