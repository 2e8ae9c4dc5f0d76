"""The compiler's entry points: a plan (or a task text) + m labelled rows → a compiled plan.

:func:`compile_async` resolves the typed task (a :class:`~sgde.task.TaskSpec` given, or
inferred from the rows and the plan), checks every row against it, picks the metric (the
user's, or the per-type default) and runs the loop (:mod:`sgde.optimize.loop`). The compiled
plan records the task in ``plan.metadata["task"]`` and its provenance in
``plan.metadata["compile"]``. See ``docs/compiler.md`` for the algorithm and every setting.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sgde.errors import CompileError, TaskSpecError, UsageError
from sgde.models.usage import MeteredBackend, UsageMeter
from sgde.optimize.checkpoint import Checkpoint
from sgde.optimize.events import EventSink
from sgde.optimize.loop import CompileLoop, CompileResult
from sgde.optimize.operators.registry import OperatorRegistry, default_registry
from sgde.optimize.settings import CompileSettings
from sgde.plan.model import Plan
from sgde.runtime.backend import Backend
from sgde.runtime.calls import CodeRunner
from sgde.runtime.sync import run_sync
from sgde.task import Metric, TaskSpec, infer_task, row_where
from sgde.task import default_metric as task_default_metric

__all__ = [
    "CompileResult",
    "Metric",
    "compile",
    "compile_async",
    "default_metric",
    "resolve_task",
    "trainset_hash",
]


def default_metric(output_names: Sequence[str]) -> Metric:
    """Fraction of output fields right, each judged by :func:`sgde.task.answer_correct` with
    the type read from the gold value. A thin wrapper over :func:`sgde.task.default_metric`
    (use that with a :class:`~sgde.task.TaskSpec` for declared types and feedback). Fields
    without a gold value in the row are not scored."""

    scorer = task_default_metric(list(output_names))

    def metric(row: Mapping[str, Any], outputs: Mapping[str, Any]) -> float:
        return scorer(row, outputs).value

    return metric


def trainset_hash(rows: Sequence[Mapping[str, Any]]) -> str:
    """``sha256:<hex>`` over the canonical JSON of the training rows."""
    text = json.dumps(list(rows), sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def _check_rows(trainset: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = list(trainset)
    if not rows:
        raise UsageError("the training set is empty", hint="pass at least one labelled row")
    for i, r in enumerate(rows, start=1):
        if not isinstance(r, Mapping):
            raise UsageError(f"training row {i} is not an object")
    return [dict(r) for r in rows]


def _plan_fields(plan: Plan) -> tuple[list[str], list[str]]:
    return list(plan.inputs), list(plan.outputs)


def resolve_task(
    plan_or_task: Plan | str,
    rows: Sequence[Mapping[str, Any]],
    *,
    task: TaskSpec | None = None,
    settings: CompileSettings | None = None,
    where: str = "rows",
) -> TaskSpec:
    """The typed task of a compile: ``task`` when given, else inferred from the rows.

    A starting plan fixes the input and output names (its ``inputs`` and ``outputs``); a task
    text leaves them to ``settings.input_fields`` / ``settings.output_fields`` or to the
    default split of :func:`sgde.task.infer_task`. A given ``task`` must name the plan's
    inputs and outputs.

    Raises:
        TaskDataError: a row lacks a field or holds a value of another type (row and field
            named).
        TaskSpecError: the task does not fit the plan.
    """
    settings = settings or CompileSettings()
    inputs: list[str] | None
    outputs: list[str] | None
    if isinstance(plan_or_task, Plan):
        inputs, outputs = _plan_fields(plan_or_task)
        description = plan_or_task.description or plan_or_task.name
    else:
        inputs = list(settings.input_fields) if settings.input_fields else None
        outputs = list(settings.output_fields) if settings.output_fields else None
        description = plan_or_task
    if task is None:
        return infer_task(
            rows, description=description, inputs=inputs, outputs=outputs, where=where
        )
    if isinstance(plan_or_task, Plan):
        missing = [n for n in inputs or [] if n not in task.inputs]
        missing += [n for n in outputs or [] if n not in task.outputs]
        if missing:
            raise TaskSpecError(
                f"the task spec lacks the plan's field(s) {', '.join(missing)}",
                hint="declare every plan input and output in the TaskSpec, or pass task=None",
            )
    return task


def _check_task_rows(
    task: TaskSpec, rows: list[dict[str, Any]], where: str
) -> list[dict[str, Any]]:
    return [
        {**row, **task.check_row(row, row_where(where, i))} for i, row in enumerate(rows, start=1)
    ]


def _check_plan_outputs(plan: Plan, task: TaskSpec) -> None:
    """A starting plan must produce every output of the task."""
    missing = [o for o in task.outputs if o not in plan.outputs]
    if missing:
        raise CompileError(
            f"the plan has no output {', '.join(repr(o) for o in missing)} the task asks for",
            hint="add the output to the plan, or compile with --output naming its outputs",
        )


async def compile_async(
    plan_or_task: Plan | str,
    trainset: Sequence[Mapping[str, Any]],
    *,
    teacher: Backend,
    student: Backend,
    sandbox: CodeRunner,
    task: TaskSpec | None = None,
    metric: Metric | None = None,
    settings: CompileSettings | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    events: EventSink | None = None,
    operators: OperatorRegistry | None = None,
    rows_where: str = "rows",
    meter: UsageMeter | None = None,
) -> CompileResult:
    """Compile a plan (or a task description) with SGDe; the input is never mutated.

    Args:
        plan_or_task: A starting :class:`Plan`, or the task text for a cold start.
        trainset: Labelled rows: the task's inputs and the gold value of each output.
        teacher: The teacher backend (critiques, edits, solutions).
        student: The student backend that runs the compiled plan.
        sandbox: A ``SandboxPool`` (all teacher code runs there, never in-process).
        task: The typed task; ``None`` infers it from the rows (and the plan's fields).
        metric: ``metric(row, outputs)`` returning a score in [0, 1], a bool, a
            :class:`~sgde.task.Score` or ``(score, feedback)``; the feedback text goes into
            the teacher's critique. Default: the per-type metric of the task's outputs.
        settings: Loop, placement and teacher settings.
        checkpoint_dir: Directory for per-iteration checkpoints.
        resume: Continue from the checkpoint in ``checkpoint_dir``.
        events: Listener for progress events.
        operators: The edit operators (default :func:`default_registry`).
        rows_where: The rows' file name, for error messages (``rows.jsonl:3``).
        meter: The usage ledger to record the teacher's and student's calls in (the report's
            usage is read from it). Default: the ledger of the backends when both are bound
            through one :class:`~sgde.models.ModelHub`, else a new one.

    Returns:
        The compiled plan (task in ``metadata["task"]``, provenance in
        ``metadata["compile"]``) and the report.

    Raises:
        UsageError: empty training set, ``resume`` without ``checkpoint_dir``.
        TaskDataError: a row lacks a field or has a value of the wrong type.
        TaskMetricError: the metric raised or returned something that is not a score.
        CompileError: unusable checkpoint, a plan without the task's outputs.
    """
    if resume and checkpoint_dir is None:
        raise UsageError(
            "resume needs a checkpoint directory", hint="pass checkpoint_dir (CLI: --report DIR)"
        )
    settings = settings or CompileSettings()
    rows = _check_rows(trainset)
    spec = resolve_task(plan_or_task, rows, task=task, settings=settings, where=rows_where)
    rows = _check_task_rows(spec, rows, rows_where)
    if isinstance(plan_or_task, Plan):
        _check_plan_outputs(plan_or_task, spec)
    chosen: Metric = metric if metric is not None else task_default_metric(spec)
    ledger = _ledger(teacher, student, meter)
    teacher = _metered("teacher", teacher, ledger)
    student = _metered("student", student, ledger)
    loop = CompileLoop(
        rows=rows,
        task=spec,
        metric=chosen,
        rows_where=rows_where,
        teacher=teacher,
        student=student,
        sandbox=sandbox,
        settings=settings,
        checkpoint=Checkpoint(checkpoint_dir) if checkpoint_dir is not None else None,
        events=events,
        operators=operators or default_registry(),
        meter=ledger,
    )
    return await loop.run(plan_or_task, resume=resume, data_hash=trainset_hash(rows))


def _ledger(teacher: Backend, student: Backend, meter: UsageMeter | None) -> UsageMeter:
    """The compile's usage ledger: given, else the one both backends record in, else new."""
    if meter is not None:
        return meter
    shared = getattr(teacher, "meter", None)
    same = shared is getattr(student, "meter", None)
    return shared if isinstance(shared, UsageMeter) and same else UsageMeter()


def _metered(role: str, backend: Backend, ledger: UsageMeter) -> Backend:
    """``backend`` if it records into ``ledger`` already, else wrapped so that it does."""
    if getattr(backend, "meter", None) is ledger:
        return backend
    return MeteredBackend(role, backend, ledger)


def compile(
    plan_or_task: Plan | str,
    trainset: Sequence[Mapping[str, Any]],
    *,
    teacher: Backend,
    student: Backend,
    sandbox: CodeRunner,
    task: TaskSpec | None = None,
    metric: Metric | None = None,
    settings: CompileSettings | None = None,
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    events: EventSink | None = None,
    operators: OperatorRegistry | None = None,
    rows_where: str = "rows",
    meter: UsageMeter | None = None,
) -> CompileResult:
    """Synchronous :func:`compile_async` (refuses to run inside a running event loop)."""
    return run_sync(
        compile_async(
            plan_or_task,
            trainset,
            teacher=teacher,
            student=student,
            sandbox=sandbox,
            task=task,
            metric=metric,
            settings=settings,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            events=events,
            operators=operators,
            rows_where=rows_where,
            meter=meter,
        ),
        name="compile",
        use_instead="compile_async(...)",
    )
