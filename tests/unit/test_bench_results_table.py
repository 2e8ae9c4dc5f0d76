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
    assert (
        "Budget: none (unlimited); used per cell (spent, or replayed from the request cache)"
        in block
    )
    assert "sgde (m=3) 4" in block


def test_teacher_tokens_replayed_from_the_cache_count_as_used(results_path: Path) -> None:
    module = _module()
    results = json.loads(results_path.read_text())
    for cell in results["cells"]:
        if cell["cell"]["method"] == "sgde":
            cell["prepare"]["teacher_usage"] = {"total_tokens": 100, "replayed_tokens": 900}
            cell["prepare"]["student_usage"] = None
    from sgde.evaluation.report import summarise_cells

    results["summary"] = summarise_cells(results["cells"])
    block = module.render_table(results)
    row = next(line for line in block.splitlines() if line.startswith("| **sgde** | 3 |"))
    assert "| 1,000 (900 cached) |" in row
    assert "sgde (m=3) 1,000" in block  # the budget line counts the replayed calls too


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


def _peer_cell(
    template: str, items: list[dict[str, object]], *, seed: int = 0, failure: str | None = None
) -> dict[str, object]:
    """A finished dspy-gepa cell on ``items``; with ``failure`` the peer crashed (every row
    carries it)."""
    rows = [
        {
            "id": it["id"],
            "gold": it.get("gold"),
            "correct": failure is None and i % 2 == 0,
            "ok": failure is None,
            "error": f"PeerFailed: {failure}" if failure else None,
        }
        for i, it in enumerate(items)
    ]
    return {
        "cell": {
            "id": f"{template}__m3__s{seed}__dspy-gepa",
            "template": template,
            "m": 3,
            "seed": seed,
            "method": "dspy-gepa",
        },
        "status": "ok",
        "eval": {"items": rows},
        "prepare": {
            "teacher_usage": {"total_tokens": 900},
            "student_usage": {"total_tokens": 300},
            "report": {
                "peer": "dspy-gepa",
                "optimizer": "dspy.GEPA",
                "status": "failed" if failure else "ok",
                "failure": failure,
                "notes": ["\x1b[32mplain GEPA\x1b[0m on ChainOfThought"],
                "settings": {"max_metric_calls": 40},
                "budget": {"tokens": 2000, "spent": 1200, "refused_calls": 1},
                "versions": {"dspy": "3.4.1", "gepa": "0.0.26", "litellm": "1.0"},
            },
        },
    }


def _peer_doc(base: dict[str, object], cells: list[dict[str, object]]) -> dict[str, object]:
    """A peers run next to ``base``: same models and config but its own cells and budget."""
    config = {**base["config"], "methods": ["dspy-gepa"], "m": [3], "budget": 2000}  # type: ignore[dict-item]
    return {
        **base,
        "name": "peers",
        "config": config,
        "cells": cells,
        "summary": [
            {
                "method": "dspy-gepa",
                "m": 3,
                "n_items": 8,
                "accuracy": 0.5,
                "ci_low": 0.2,
                "ci_high": 0.8,
            }
        ],
        "comparisons": [],
    }


def _sgde_items(results: dict[str, object]) -> list[dict[str, object]]:
    cells = results["cells"]
    assert isinstance(cells, list)
    cell = next(c for c in cells if c["cell"]["id"] == "gsmhard-0000__m3__s0__sgde")
    return list(cell["eval"]["items"])


def test_comparisons_computed_here_equal_the_bench_own(results_path: Path) -> None:
    results = json.loads(results_path.read_text())
    mine = _module().combine([results])["comparisons"]
    assert [(c["m"], c["baseline"], c["n_pairs"]) for c in mine] == [
        (c["m"], c["baseline"], c["n_pairs"]) for c in results["comparisons"]
    ]
    for ours, theirs in zip(mine, results["comparisons"], strict=True):
        assert ours["p_value"] == pytest.approx(theirs["p_value"])
        assert ours["delta"] == pytest.approx(theirs["delta"])


def test_mcnemar_matches_the_exact_and_the_chi_square_reference() -> None:
    module = _module()
    # 3 discordant pairs, all one way: exact two-sided p = 2 / 2**3.
    assert module.mcnemar([True] * 3 + [False], [False] * 3 + [False]) == (0.0, 0.25)
    # 30 vs 0 discordant pairs: chi-square (|30 - 0| - 1)^2 / 30.
    statistic, p_value = module.mcnemar([True] * 30, [False] * 30)
    assert statistic == pytest.approx(29**2 / 30) and p_value < 1e-6


def test_peers_from_another_run_are_paired_with_sgde(results_path: Path) -> None:
    module = _module()
    sgde = json.loads(results_path.read_text())
    peers = _peer_doc(sgde, [_peer_cell("gsmhard-0000", _sgde_items(sgde))])
    block = module.render_table(module.combine([sgde, peers]))
    row = next(line for line in block.splitlines() if line.startswith("| dspy-gepa"))
    assert row.startswith("| dspy-gepa (dspy 3.4.1) | 3 |")
    # sgde is right on all 8 items, the peer on every other one: 4 discordant pairs.
    assert "vs dspy-gepa (m=3, 8 pairs): +50.0 points, p = 0.125" in block
    assert "Budgets differ between the runs" in block and "dspy-gepa (peers): 2,000 tokens" in block
    assert "dspy-gepa (m=3) 1,200" in block
    assert "Peer `dspy-gepa`: `dspy.GEPA` from dspy 3.4.1, gepa 0.0.26, litellm 1.0" in block
    assert 'settings {"max_metric_calls": 40}' in block
    assert "spent 1,200 of 2,000 tokens, 1 call(s) refused" in block
    assert "note: plain GEPA on ChainOfThought" in block  # without terminal colour codes


def test_a_failed_peer_is_a_row_with_its_failures_counted(results_path: Path) -> None:
    module = _module()
    sgde = json.loads(results_path.read_text())
    cell = _peer_cell(
        "gsmhard-0000", _sgde_items(sgde), failure="AdapterParseError: no [[ ## answer"
    )
    block = module.render_table(module.combine([sgde, _peer_doc(sgde, [cell])]))
    row = next(line for line in block.splitlines() if line.startswith("| dspy-gepa"))
    assert "| 8 | 8 |" in row  # 8 items, 8 failed
    assert "failed: AdapterParseError: no [[ ## answer" in block
    assert "dspy-gepa gsmhard-0000 m=3: 8/8 (PeerFailed: AdapterParseError ×8)" in block


def test_runs_with_different_items_or_overlapping_methods_are_refused(
    results_path: Path,
) -> None:
    module = _module()
    sgde = json.loads(results_path.read_text())
    items = _sgde_items(sgde)
    moved = [{**items[0], "gold": 12345}, *items[1:]]
    with pytest.raises(
        ValueError, match=r"test items of gsmhard-0000 \(seed 0\) differ.*7 in common"
    ):
        module.combine([sgde, _peer_doc(sgde, [_peer_cell("gsmhard-0000", moved)])])
    with pytest.raises(ValueError, match=r"method \S+ at m=\d is in both"):
        module.combine([sgde, sgde])
    other = {**_peer_doc(sgde, []), "models": {"student": "x", "teacher": "fake:teacher"}}
    with pytest.raises(ValueError, match="differ in student"):
        module.combine([sgde, other])


def test_general_table_pools_a_peers_run_per_student(tmp_path: Path) -> None:
    sgde = _typed_doc("s1", {("a", "student"): 0.2, ("a", "sgde"): 0.9, ("b", "sgde"): 0.5})
    items = [{"id": str(i)} for i in range(10)]
    peers = {
        **_typed_doc("s1", {}),
        "cells": [_peer_cell("a", items)],
        "summary": [{"method": "dspy-gepa", "m": 3}],
    }
    peers["cells"][0]["cell"].pop("seed")  # type: ignore[index]
    paths = []
    for i, doc in enumerate((sgde, peers)):
        path = tmp_path / f"r{i}.json"
        path.write_text(json.dumps(doc))
        paths.append(str(path))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *paths], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    block = done.stdout
    assert "| s1 | dspy-gepa (dspy 3.4.1) | 3 | 50.0 | – | – | 50.0 |" in block
    # sgde 9/10 vs the peer 5/10 on task a only (the one both ran): 10 pairs.
    assert "`s1`: paired McNemar tests" in block and "vs dspy-gepa (m=3, 10 pairs): +40.0" in block
    assert "did not finish: b__pal (error)" in block


def test_gsm_and_typed_results_make_separate_tables(results_path: Path, tmp_path: Path) -> None:
    typed = tmp_path / "typed.json"
    typed.write_text(json.dumps(_typed_doc("s1", {("a", "sgde"): 1.0})))
    assert _module().main([str(results_path), str(typed)]) == 1
