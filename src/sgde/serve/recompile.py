"""Recompile a served plan from production feedback: the labelled rows of the request log.

The labelled rows (inputs as served, label as the gold outputs) become the training set of
:func:`sgde.optimize.compile_async`, starting from the served plan. Both plans are then scored
on *every* labelled row with the compiler's metric, so the report says before anything is
promoted whether the new version is better on what production saw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sgde.errors import UsageError
from sgde.optimize import CompileResult, CompileSettings, compile_async, default_metric
from sgde.optimize.events import EventSink
from sgde.plan import Plan, plan_hash
from sgde.runtime.backend import Backend
from sgde.runtime.calls import CodeRunner
from sgde.runtime.executor import Executor
from sgde.serve.log import RequestLog

__all__ = ["RecompileOutcome", "labelled_rows", "recompile_from_log", "score_plan"]


@dataclass
class RecompileOutcome:
    """What a recompile produced.

    Attributes:
        old_plan: The plan recompiled from.
        new_plan: The compiled plan (not promoted: write it and promote it yourself).
        rows: The labelled rows (inputs + gold outputs), oldest first.
        trained_on: How many of them the compiler trained on.
        old_accuracy: Mean metric of the old plan over ``rows``.
        new_accuracy: Mean metric of the new plan over ``rows``.
        compile_result: The compiler's result (report included).
    """

    old_plan: Plan
    new_plan: Plan
    rows: list[dict[str, Any]]
    trained_on: int
    old_accuracy: float
    new_accuracy: float
    compile_result: CompileResult

    @property
    def improved(self) -> bool:
        """Whether the new plan scores higher on the labelled rows."""
        return self.new_accuracy > self.old_accuracy

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "plan": self.old_plan.name,
            "old_version": plan_hash(self.old_plan),
            "new_version": plan_hash(self.new_plan),
            "labelled_rows": len(self.rows),
            "trained_on": self.trained_on,
            "old_accuracy": self.old_accuracy,
            "new_accuracy": self.new_accuracy,
            "improved": self.improved,
        }


def labelled_rows(
    log: RequestLog, plan: Plan, *, version: str | None = None
) -> list[dict[str, Any]]:
    """Training rows from the log: each labelled request of this plan's name, as
    ``{**inputs, **label}``.

    Raises:
        UsageError: No labelled row for the plan, or labels without the plan's outputs.
    """
    records = log.rows(plan=plan.name, version=version, labelled=True)
    if not records:
        raise UsageError(
            f"{log.path} has no labelled requests of plan '{plan.name}'"
            + (f" version {version}" if version else ""),
            hint="attach correct answers with `sgde log label LOG REQUEST_ID answer=...` or "
            "POST /v1/log/{id}/label",
        )
    rows: list[dict[str, Any]] = []
    for rec in records:
        label = rec.label or {}
        missing = [name for name in plan.outputs if name not in label]
        if missing:
            raise UsageError(
                f"the label of request {rec.id} lacks output(s) {', '.join(missing)}",
                hint="a label holds a correct value for each plan output",
            )
        rows.append({"id": rec.id, **rec.inputs, **label})
    return rows


async def score_plan(
    plan: Plan, rows: Sequence[Mapping[str, Any]], executor: Executor, *, seed: int = 0
) -> float:
    """Mean of the compiler's default metric over ``rows`` (a failed run scores 0)."""
    metric = default_metric(list(plan.outputs))
    results = await executor.run_batch(plan, rows, seed=seed)
    scores = [
        _value(metric(row, result.outputs)) if result.ok else 0.0
        for row, result in zip(rows, results, strict=True)
    ]
    return sum(scores) / len(scores)


def _value(raw: Any) -> float:
    """A metric's result as a number (metrics may return a number, a score object with a
    ``value`` or a ``(value, feedback)`` pair)."""
    if isinstance(raw, tuple):
        raw = raw[0]
    return float(getattr(raw, "value", raw))


async def recompile_from_log(
    plan: Plan,
    log: RequestLog,
    *,
    teacher: Backend,
    student: Backend,
    sandbox: CodeRunner,
    settings: CompileSettings | None = None,
    version: str | None = None,
    max_train: int | None = None,
    events: EventSink | None = None,
) -> RecompileOutcome:
    """Compile a new version of ``plan`` from the log's labelled rows; score old and new.

    Args:
        plan: The served plan (the compiler's starting point).
        log: The request log.
        teacher: The teacher backend.
        student: The student backend (the one the plan is served with).
        sandbox: The code sandbox.
        settings: Compiler settings.
        version: Use only rows served by this version (hash or prefix).
        max_train: Train on at most this many (the most recent) labelled rows.
        events: Compile progress listener.
    """
    rows = labelled_rows(log, plan, version=version)
    train = rows[-max_train:] if max_train else rows
    result = await compile_async(
        plan,
        trainset=train,
        teacher=teacher,
        student=student,
        sandbox=sandbox,
        settings=settings,
        events=events,
    )
    executor = Executor({"student": student, "teacher": teacher}, sandbox=sandbox)
    old = await score_plan(plan, rows, executor)
    new = await score_plan(result.plan, rows, executor)
    return RecompileOutcome(plan, result.plan, rows, len(train), old, new, result)
