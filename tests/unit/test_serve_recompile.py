"""Recompiling from the request log with fakes: labelled rows train, old vs new are scored."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit._optimize_fakes import (
    ROWS,
    FakeTeacher,
    InProcessRunner,
    single_plan,
    student_backend,
)

from sgde.errors import UsageError
from sgde.optimize import CompileSettings
from sgde.plan import plan_hash
from sgde.serve.log import LogRecord, RequestLog
from sgde.serve.recompile import labelled_rows, recompile_from_log


def _log(tmp_path: Path, *, label: bool = True) -> RequestLog:
    plan = single_plan()
    log = RequestLog(tmp_path / "log.sqlite")
    for i, row in enumerate(ROWS):
        log.record(
            LogRecord(
                id=f"r{i}",
                plan=plan.name,
                version=plan_hash(plan),
                inputs={"question": row["question"]},
                outputs={"answer": 1},
                ok=True,
                status=200,
                latency_s=0.1,
            )
        )
        if label:
            log.label(f"r{i}", {"answer": row["answer"]})
    log.record(
        LogRecord(
            id="other",
            plan="other-plan",
            version="sha256:00",
            inputs={},
            outputs={},
            ok=True,
            status=200,
            latency_s=0.1,
        )
    )
    return log


async def test_recompile_trains_on_labelled_rows_and_reports_old_vs_new(tmp_path: Path) -> None:
    plan = single_plan()
    log = _log(tmp_path)
    outcome = await recompile_from_log(
        plan,
        log,
        teacher=FakeTeacher().backend,
        student=student_backend(),
        sandbox=InProcessRunner(),
        settings=CompileSettings(max_iters=3),
    )
    assert [r["id"] for r in outcome.rows] == ["r0", "r1", "r2"]
    assert outcome.old_accuracy == 0.0 and outcome.new_accuracy == 1.0 and outcome.improved
    summary = outcome.to_dict()
    assert summary["old_version"] == plan_hash(plan) != summary["new_version"]
    assert any(n.kind == "code" for n in outcome.new_plan.nodes)
    log.close()


def test_no_labelled_rows_is_a_clear_error(tmp_path: Path) -> None:
    log = _log(tmp_path, label=False)
    with pytest.raises(UsageError, match="no labelled requests of plan 'duck_eggs'"):
        labelled_rows(log, single_plan())
    log.label("r0", {"wrong": 1})
    with pytest.raises(UsageError, match="lacks output\\(s\\) answer"):
        labelled_rows(log, single_plan())
    log.close()
