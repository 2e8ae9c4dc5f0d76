"""scripts/results_table.py renders the README table from results.json."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from _bench_fakes import fake_config, fake_deps

from sgde.evaluation.bench import run_bench_async

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "results_table.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("results_table", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def results_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import asyncio

    out = tmp_path_factory.mktemp("bench")
    asyncio.run(run_bench_async(fake_config(), out, deps=fake_deps()))
    return out / "results.json"


def test_table_names_models_m_items_seeds_and_date(results_path: Path) -> None:
    results = json.loads(results_path.read_text())
    block = _module().render_table(results)
    assert "student `fake:student`, teacher `fake:teacher`" in block
    assert "m ∈ {3, 5}" in block and "8 held-out test items" in block
    assert "seeds {0}" in block and results["created"][:10] in block
    rows = [line for line in block.splitlines() if line.startswith("| **sgde**")]
    assert len(rows) == 2 and "| 100.0 |" in rows[0]
    assert "McNemar" in block


def test_readme_block_is_replaced_between_markers(results_path: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- results-table -->\nold\n<!-- /results-table -->\ntail\n")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(results_path), "--readme", str(readme)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    text = readme.read_text()
    assert "old" not in text and text.endswith("<!-- /results-table -->\ntail\n")
    assert "| **sgde** | 3 | 100.0 |" in text


def test_missing_markers_and_bad_input_fail_cleanly(results_path: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    module = _module()
    assert module.main([str(results_path), "--readme", str(readme)]) == 1
    assert readme.read_text() == "no markers\n"
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert module.main([str(bad)]) == 1


def _typed_doc(student: str, accuracy: dict[tuple[str, str], float]) -> dict[str, object]:
    """A typed-task results document: tasks a (a family) and b (a dataset), m = 3."""
    cells = []
    for (task, method), acc in accuracy.items():
        correct = round(10 * acc)
        items = [{"id": str(i), "correct": i < correct} for i in range(10)]
        cells.append(
            {
                "cell": {"id": f"{task}__{method}", "template": task, "m": 3, "method": method},
                "status": "ok",
                "eval": {"items": items},
                "prepare": {"stop_reason": "zero training loss"} if method == "sgde" else {},
            }
        )
    cells.append(
        {"cell": {"id": "b__pal", "template": "b", "m": 3, "method": "pal"}, "status": "error"}
    )
    return {
        "name": "typed",
        "created": "2026-12-02T00:00:00",
        "sgde_version": "0",
        "models": {"student": student, "teacher": "t"},
        "config": {
            "tasks": ["a", {"dataset": "data/b.jsonl"}],
            "m": [3],
            "n_test": 10,
            "seeds": [0],
        },
        "summary": [{"method": "student"}, {"method": "sgde"}],
        "cells": cells,
    }


def test_general_table_has_a_column_per_task_and_the_hard_subset(tmp_path: Path) -> None:
    module = _module()
    small = _typed_doc(
        "s1", {("a", "student"): 0.2, ("b", "student"): 0.7, ("a", "sgde"): 0.9, ("b", "sgde"): 0.5}
    )
    other = _typed_doc(
        "s2", {("a", "student"): 0.5, ("b", "student"): 0.3, ("a", "sgde"): 1.0, ("b", "sgde"): 0.8}
    )
    block = module.render_general([small, other])
    assert "| student | method | m | a | b | mean | alone<40 |" in block
    assert "| s1 | student | 3 | 20.0 | 70.0 | 45.0 | 20.0 |" in block
    assert "| s1 | **sgde** | 3 | 90.0 | 50.0 | 70.0 | 90.0 |" in block
    assert "| s2 | **sgde** | 3 | 100.0 | 80.0 | 90.0 | 80.0 |" in block
    assert "`s1`, m=3: student alone < 40 % on a" in block
    assert "a m=3 (s1): zero training loss" in block
    assert "did not finish: b__pal (error)" in block
    readme = tmp_path / "README.md"
    readme.write_text(
        "<!-- results-table -->\ngsm\n<!-- /results-table -->\n"
        "<!-- results-table-general -->\nSTALE\n<!-- /results-table-general -->\n"
    )
    paths = []
    for i, doc in enumerate((small, other)):
        path = tmp_path / f"r{i}.json"
        path.write_text(json.dumps(doc))
        paths.append(str(path))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *paths, "--readme", str(readme)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    text = readme.read_text()
    assert "gsm" in text and "STALE" not in text and "| s2 | student | 3 |" in text


def test_general_table_refuses_gsm_results(results_path: Path) -> None:
    with pytest.raises(ValueError, match="typed-task"):
        _module().render_general([json.loads(results_path.read_text())])
