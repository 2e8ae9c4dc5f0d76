"""sgde demo: configuration, orchestration with injected fakes, resume, CLI, model checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _bench_fakes import STUDENT, TEACHER, FakeCompiler, fake_deps
from typer.testing import CliRunner

from sgde.cli import eval_cmds
from sgde.cli.app import app
from sgde.errors import UsageError
from sgde.evaluation import demo as demo_module
from sgde.evaluation.bench import BenchOutcome
from sgde.evaluation.demo import (
    DEFAULT_TEMPLATE,
    FULL_METHODS,
    LOCAL_INSTALL_HINT,
    QUICK_METHODS,
    DemoOptions,
    check_local_models,
    comparison_rows,
    demo_config,
    run_demo_async,
)


def _options(tmp_path: Path, **kw: Any) -> DemoOptions:
    base: dict[str, Any] = {
        "quick": True,
        "out_dir": tmp_path,
        "student": STUDENT,
        "teacher": TEACHER,
        "methods": ("direct", "sgde"),
    }
    base.update(kw)
    return DemoOptions(**base)


def test_quick_and_full_configs() -> None:
    quick = demo_config(DemoOptions(quick=True))
    full = demo_config(DemoOptions())
    assert quick.templates == [DEFAULT_TEMPLATE] and quick.m == [3]
    assert tuple(quick.methods) == QUICK_METHODS and tuple(full.methods) == FULL_METHODS
    assert quick.methods[-1] == "sgde"  # baselines first: results appear early
    assert quick.n_test < full.n_test
    assert quick.compile.max_iters < full.compile.max_iters
    small = demo_config(DemoOptions(quick=True, n_test=4, max_iters=1))
    assert small.n_test == 4 and small.compile.max_iters == 1


async def test_demo_runs_baselines_then_compiles(tmp_path: Path) -> None:
    compiler = FakeCompiler()
    checked: list[list[str]] = []
    outcome = await run_demo_async(
        _options(tmp_path, n_test=6),
        deps=fake_deps(compiler),
        preflight=lambda uris: checked.append(list(uris)),
    )
    assert checked == [[STUDENT, TEACHER]]
    assert [len(c["trainset"]) for c in compiler.calls] == [3]
    rows = comparison_rows(outcome.results)
    assert [r["method"] for r in rows] == ["direct", "sgde"]
    assert rows[-1]["accuracy"] == 1.0 and rows[-1]["n_items"] == 6
    assert outcome.report.html.exists()


async def test_interrupted_demo_resumes(tmp_path: Path) -> None:
    await run_demo_async(
        _options(tmp_path), deps=fake_deps(FakeCompiler(fail=True)), preflight=None
    )
    # the failed SGDe cell is recorded; a rerun keeps the finished baseline and the record
    compiler = FakeCompiler()
    outcome = await run_demo_async(_options(tmp_path), deps=fake_deps(compiler), preflight=None)
    assert outcome.ran == 0 and compiler.calls == []
    (tmp_path / "cells" / f"{DEFAULT_TEMPLATE}__m3__s0__sgde.json").unlink()
    outcome = await run_demo_async(_options(tmp_path), deps=fake_deps(compiler), preflight=None)
    assert outcome.ran == 1 and len(compiler.calls) == 1


def test_missing_llama_cpp_names_the_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> None:
        raise UsageError("llama-cpp-python is not installed", hint="pip install llama-cpp-python")

    monkeypatch.setattr(demo_module, "import_llama_cpp", missing)
    with pytest.raises(UsageError) as info:
        check_local_models(["local:smollm2-135m"])
    assert LOCAL_INSTALL_HINT in str(info.value)
    check_local_models(["openai:gpt-4o-mini"])  # non-local models need no packages


def test_cli_demo_prints_table_and_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    async def fake_run(options: DemoOptions, **kw: Any) -> BenchOutcome:
        seen["options"] = options
        return await run_demo_async(
            DemoOptions(
                **{
                    **options.__dict__,
                    "student": STUDENT,
                    "teacher": TEACHER,
                    "methods": ("direct", "sgde"),
                }
            ),
            deps=fake_deps(),
            preflight=None,
            observer=kw.get("observer"),
        )

    monkeypatch.setattr(eval_cmds, "run_demo_async", fake_run)
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        app, ["demo", "--quick", "--out", str(out), "--n-test", "4", "--max-iters", "1"]
    )
    assert result.exit_code == 0, result.output
    assert seen["options"].quick and seen["options"].n_test == 4
    assert seen["options"].max_iters == 1
    assert "report.html" in result.output and "sgde" in result.output
    assert (out / "report.html").exists()
