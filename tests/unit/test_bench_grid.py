"""The bench grid: cells, shared train-free results, checkpoints and resume."""

from __future__ import annotations

import json
from pathlib import Path

from _bench_fakes import FakeCompiler, fake_config, fake_deps, mapping_rows

from sgde.evaluation.bench import Cell, data_seed, grid, run_bench_async
from sgde.evaluation.bench_grid import fingerprint
from sgde.optimize.settings import CompileSettings


def test_grid_orders_template_seed_m_method() -> None:
    config = fake_config(templates=["t1", "t2"], m=[3, 5], seeds=[0, 1])
    cells = grid(config)
    assert len(cells) == 2 * 2 * 2 * 2
    assert cells[0] == Cell("t1", 3, 0, "direct")
    assert cells[1] == Cell("t1", 3, 0, "sgde")
    assert cells[2] == Cell("t1", 5, 0, "direct")
    assert cells[-1] == Cell("t2", 5, 1, "sgde")
    assert cells[0].id == "t1__m3__s0__direct"


def test_derived_seeds_differ_by_purpose_and_template() -> None:
    seeds = {data_seed(0, p, t) for p in ("train", "test") for t in ("a", "b")}
    assert len(seeds) == 4
    assert data_seed(0, "train", "a") == data_seed(0, "train", "a")


async def test_bench_runs_every_cell_and_writes_results(tmp_path: Path) -> None:
    compiler = FakeCompiler()
    outcome = await run_bench_async(fake_config(), tmp_path, deps=fake_deps(compiler))
    results = outcome.results
    assert outcome.ran == 3 and outcome.skipped == 1  # direct at m=5 shares m=3's result
    assert [len(c["trainset"]) for c in compiler.calls] == [3, 5]
    assert [c["settings"].seed for c in compiler.calls] == [0, 0]

    sgde = {r["m"]: r for r in mapping_rows(results, "sgde")}
    direct = {r["m"]: r for r in mapping_rows(results, "direct")}
    assert sgde[3]["accuracy"] == 1.0 and sgde[5]["n_items"] == 8
    assert 0.0 < direct[3]["accuracy"] < 1.0
    assert direct[3]["accuracy"] == direct[5]["accuracy"]
    assert sgde[3]["teacher_tokens_mean"] > 0
    assert direct[3]["teacher_tokens_mean"] is None
    assert sgde[3]["iterations_mean"] == 2 and sgde[3]["converged_frac"] == 1.0

    comparisons = {(c["m"], c["baseline"]): c for c in results["comparisons"]}
    c = comparisons[(3, "direct")]
    assert c["n_pairs"] == 8 and c["baseline_only"] == 0
    assert c["reference_only"] == 8 - round(8 * direct[3]["accuracy"])

    assert (tmp_path / "results.json").exists()
    assert (tmp_path / "report.html").exists() and (tmp_path / "report.md").exists()
    loaded = json.loads((tmp_path / "results.json").read_text())
    assert loaded["models"] == {"student": "fake:student", "teacher": "fake:teacher"}
    assert "api_key" not in loaded["config"]["model_settings"]
    sgde_cell = next(c for c in loaded["cells"] if c["cell"]["method"] == "sgde")
    assert sgde_cell["prepare"]["loss_history"] == [2 / 3, 1 / 3, 0.0]
    assert "solve" in sgde_cell["prepare"]["mermaid"]


async def test_test_items_are_shared_and_disjoint_from_training(tmp_path: Path) -> None:
    compiler = FakeCompiler()
    await run_bench_async(fake_config(), tmp_path, deps=fake_deps(compiler))
    train = [json.loads(x) for x in (tmp_path / "data/gsmhard-0000__s0__train.jsonl").open()]
    test = [json.loads(x) for x in (tmp_path / "data/gsmhard-0000__s0__test.jsonl").open()]
    assert len(train) == 5 and len(test) == 8
    assert not {r["question"] for r in train} & {r["question"] for r in test}
    assert [r["id"] for r in compiler.calls[0]["trainset"]] == [r["id"] for r in train[:3]]
    # methods see the task fields only; provenance stays in the data files
    assert set(compiler.calls[0]["trainset"][0]) == {"id", "question", "answer"}
    assert "values" in train[0]
    cells = [json.loads(p.read_text()) for p in sorted((tmp_path / "cells").glob("*.json"))]
    item_ids = {tuple(i["id"] for i in c["eval"]["items"]) for c in cells}
    assert item_ids == {tuple(r["id"] for r in test)}


async def test_rerun_skips_finished_cells(tmp_path: Path) -> None:
    first = FakeCompiler()
    await run_bench_async(fake_config(), tmp_path, deps=fake_deps(first))
    second = FakeCompiler()
    outcome = await run_bench_async(fake_config(), tmp_path, deps=fake_deps(second))
    assert outcome.ran == 0 and outcome.skipped == 4
    assert second.calls == []
    assert len(outcome.results["cells"]) == 4

    (tmp_path / "cells" / "gsmhard-0000__m5__s0__sgde.json").unlink()
    third = FakeCompiler()
    outcome = await run_bench_async(fake_config(), tmp_path, deps=fake_deps(third))
    assert outcome.ran == 1
    assert [len(c["trainset"]) for c in third.calls] == [5]


async def test_changed_configuration_reruns_the_affected_cells(tmp_path: Path) -> None:
    await run_bench_async(fake_config(), tmp_path, deps=fake_deps())
    compiler = FakeCompiler()
    changed = fake_config(compile={"max_iters": 1})
    outcome = await run_bench_async(changed, tmp_path, deps=fake_deps(compiler))
    # Only SGDe depends on the compile settings; the direct baseline is kept.
    assert outcome.ran == 2
    assert len(compiler.calls) == 2


def test_a_compiler_setting_added_with_a_default_keeps_the_fingerprint() -> None:
    # the compiler's defaults are not part of the fingerprint: a setting added to the
    # compiler later (with a default) must not rerun every finished cell of an unchanged
    # config; a setting the config changes does
    class Later(CompileSettings):
        new_knob: int = 7

    config = fake_config(compile={"max_iters": 3})
    later = config.model_copy(update={"compile": Later(max_iters=3)})
    changed = config.model_copy(update={"compile": Later(max_iters=3, new_knob=8)})
    cell = Cell("gsmhard-0000", 3, 0, "sgde")
    assert fingerprint(later, cell) == fingerprint(config, cell)
    assert fingerprint(changed, cell) != fingerprint(config, cell)


async def test_failed_cell_is_recorded_and_kept_unless_retried(tmp_path: Path) -> None:
    failing = FakeCompiler(fail=True)
    outcome = await run_bench_async(fake_config(m=[3]), tmp_path, deps=fake_deps(failing))
    cell = next(c for c in outcome.results["cells"] if c["cell"]["method"] == "sgde")
    assert cell["status"] == "error" and "no plan" in cell["error"]
    assert mapping_rows(outcome.results, "sgde")[0]["errors"] == 1
    assert outcome.results["comparisons"] == []

    again = FakeCompiler()
    outcome = await run_bench_async(fake_config(m=[3]), tmp_path, deps=fake_deps(again))
    assert again.calls == []
    outcome = await run_bench_async(
        fake_config(m=[3]), tmp_path, deps=fake_deps(again), retry_errors=True
    )
    assert len(again.calls) == 1 and outcome.ran == 1
    assert mapping_rows(outcome.results, "sgde")[0]["accuracy"] == 1.0


async def test_a_rerun_answered_by_the_request_cache_records_the_replayed_tokens(
    tmp_path: Path,
) -> None:
    first = await run_bench_async(fake_config(), tmp_path / "a", deps=fake_deps())
    second = await run_bench_async(fake_config(), tmp_path / "b", deps=fake_deps())

    def teacher_usage(results: dict[str, object]) -> dict[str, int]:
        cells = results["cells"]
        assert isinstance(cells, list)
        cell = next(c for c in cells if c["cell"]["id"] == "gsmhard-0000__m3__s0__sgde")
        usage = cell["prepare"]["teacher_usage"]
        assert isinstance(usage, dict)
        return usage

    spent = teacher_usage(first.results)
    replayed = teacher_usage(second.results)
    assert spent["total_tokens"] > 0 and spent["cached_calls"] == 0
    assert replayed["total_tokens"] == 0 and replayed["cached_calls"] == spent["calls"]
    assert replayed["replayed_tokens"] == spent["completion_tokens"] + spent["prompt_tokens"]
    sgde = {r["m"]: r for r in mapping_rows(second.results, "sgde")}
    assert sgde[3]["teacher_tokens_mean"] == 0
    assert sgde[3]["teacher_replayed_mean"] == spent["total_tokens"]
