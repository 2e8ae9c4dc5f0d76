"""Evaluate a plan on a labelled dataset: accuracy, Wilson interval, tokens, latency, failures.

The dataset row convention is the one used everywhere in sgde: the plan's input names at the
top level of each row (GSM plans: ``question``) and the gold values under the plan's output
names (GSM plans: ``answer``). An item is correct when every output that has a gold value in
the row matches it (:func:`sgde.evaluation.metrics.answer_correct`: absolute tolerance, or
exact after rounding to the gold's decimals).

An item that *could not run* (a model endpoint, the sandbox or the budget failed; see
:mod:`sgde.evaluation.outcomes`) is no wrong answer: it carries an ``error_kind``, and the
accuracy and its interval are computed over the items that ran, with the errors counted
beside them.

Example:
    >>> result = evaluate_plan(plan, rows, {"student": backend}, sandbox=pool)  # doctest: +SKIP
    >>> result.accuracy, result.ci_low, result.ci_high  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sgde.errors import BackendError, BudgetExceeded, DataError, SandboxError, UsageError
from sgde.evaluation.baselines.base import Method, Prediction, Prepared
from sgde.evaluation.metrics import answer_correct, percentile, wilson_interval
from sgde.evaluation.outcomes import (
    ERROR_KINDS,
    exception_error_kind,
    run_error_kind,
    trace_error_kind,
)
from sgde.plan import plan_hash
from sgde.plan.model import Plan
from sgde.runtime.backend import Backend, ModelBindings
from sgde.runtime.executor import Executor, ExecutorSettings, RunResult
from sgde.runtime.sandbox import SandboxPool
from sgde.runtime.sync import run_sync
from sgde.task import TaskSpec, default_metric
from sgde.task.spec import declared_outputs

__all__ = [
    "STUDENT_ROLE",
    "EvalResult",
    "ItemCallback",
    "ItemResult",
    "check_dataset",
    "evaluate_plan",
    "evaluate_plan_async",
    "gold_fields",
    "item_id",
    "predict_items",
    "run_items_inprocess",
    "score_prediction",
    "score_run",
    "summarise",
]

ItemCallback = Callable[["ItemResult"], None]
"""Called with each item's result as soon as it is scored."""

STUDENT_ROLE = "student"


@dataclass
class ItemResult:
    """The outcome of one dataset item.

    Attributes:
        id: The row's ``id`` (or its index as a string when the row has none).
        correct: Whether every gold field matched.
        prediction: The predicted value(s): the answer itself for a single gold field, else a
            dict field -> value.
        gold: The gold value(s), shaped like ``prediction``.
        tokens: Student tokens (prompt + completion) the item cost; all model tokens when
            the trace does not break usage down by role.
        latency_s: Wall time of the item in seconds.
        ok: Whether the run finished without a node failure.
        error: The run's error message, if any.
        trace: The run trace (``RunTrace.to_dict()``), kept for failures only by default.
        error_kind: ``"backend"``, ``"sandbox"`` or ``"budget"`` when the item could not
            run (no verdict on the plan); ``None`` when it ran, right or wrong.
    """

    id: str
    correct: bool
    prediction: Any = None
    gold: Any = None
    tokens: int = 0
    latency_s: float = 0.0
    ok: bool = True
    error: str | None = None
    trace: dict[str, Any] | None = None
    error_kind: str | None = None

    @property
    def ran(self) -> bool:
        """Whether the item got a verdict (right or wrong) rather than failing to run."""
        return self.error_kind is None

    def to_dict(self, *, with_trace: bool = True) -> dict[str, Any]:
        """JSON-serialisable form."""
        out: dict[str, Any] = {
            "id": self.id,
            "correct": self.correct,
            "prediction": self.prediction,
            "gold": self.gold,
            "tokens": self.tokens,
            "latency_s": round(self.latency_s, 4),
            "ok": self.ok,
            "error": self.error,
            "error_kind": self.error_kind,
        }
        if with_trace and self.trace is not None:
            out["trace"] = self.trace
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ItemResult:
        """Inverse of :meth:`to_dict`."""
        return cls(
            id=str(data["id"]),
            correct=bool(data["correct"]),
            prediction=data.get("prediction"),
            gold=data.get("gold"),
            tokens=int(data.get("tokens", 0)),
            latency_s=float(data.get("latency_s", 0.0)),
            ok=bool(data.get("ok", True)),
            error=data.get("error"),
            trace=data.get("trace"),
            error_kind=data.get("error_kind"),
        )


@dataclass
class EvalResult:
    """Aggregate metrics of one evaluation.

    Accuracy, interval, tokens and latencies are over the items that ran; items that could
    not run are counted in :attr:`n_errors` (by kind in :attr:`error_kinds`).

    Attributes:
        name: What was evaluated (plan name or method name).
        items: Per-item results, in dataset order.
        accuracy: Fraction of the items that ran that are correct (0.0 when none ran).
        ci_low: Lower end of the Wilson 95 % interval.
        ci_high: Upper end of the Wilson 95 % interval.
        tokens_mean: Mean tokens per item that ran.
        latency_median_s: Median latency per item that ran.
        latency_p95_s: 95th percentile latency per item that ran.
        plan_hash: The plan's content hash, when a plan was evaluated.
    """

    name: str
    items: list[ItemResult]
    accuracy: float
    ci_low: float
    ci_high: float
    tokens_mean: float
    latency_median_s: float
    latency_p95_s: float
    plan_hash: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of items."""
        return len(self.items)

    @property
    def n_correct(self) -> int:
        """Number of items answered correctly."""
        return sum(1 for i in self.items if i.correct)

    @property
    def n_ran(self) -> int:
        """Number of items that ran (the denominator of the accuracy)."""
        return sum(1 for i in self.items if i.ran)

    @property
    def n_errors(self) -> int:
        """Number of items that could not run."""
        return self.n - self.n_ran

    @property
    def error_kinds(self) -> dict[str, int]:
        """Items that could not run, by kind (``backend``, ``sandbox``, ``budget``)."""
        counts: dict[str, int] = {kind: 0 for kind in ERROR_KINDS}
        for item in self.items:
            if item.error_kind is not None:
                counts[item.error_kind] = counts.get(item.error_kind, 0) + 1
        return {kind: n for kind, n in counts.items() if n}

    @property
    def failures(self) -> list[ItemResult]:
        """Items answered wrongly or that failed to run."""
        return [i for i in self.items if not i.correct]

    @property
    def errors(self) -> list[ItemResult]:
        """Items that could not run."""
        return [i for i in self.items if not i.ran]

    @property
    def correctness(self) -> dict[str, bool]:
        """Item id -> correct (for paired comparisons)."""
        return {i.id: i.correct for i in self.items}

    def to_dict(self, *, traces: str = "failures") -> dict[str, Any]:
        """JSON-serialisable form.

        Args:
            traces: ``"all"``, ``"failures"`` (default) or ``"none"``: which item traces to keep.
        """
        if traces not in {"all", "failures", "none"}:
            raise UsageError(f"traces must be 'all', 'failures' or 'none', not {traces!r}")
        items = [
            i.to_dict(with_trace=traces == "all" or (traces == "failures" and not i.correct))
            for i in self.items
        ]
        return {
            "name": self.name,
            "plan_hash": self.plan_hash,
            "n": self.n,
            "n_correct": self.n_correct,
            "n_ran": self.n_ran,
            "n_errors": self.n_errors,
            "error_kinds": self.error_kinds,
            "accuracy": self.accuracy,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "tokens_mean": self.tokens_mean,
            "latency_median_s": self.latency_median_s,
            "latency_p95_s": self.latency_p95_s,
            "extra": self.extra,
            "items": items,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalResult:
        """Inverse of :meth:`to_dict` (metrics are recomputed from the items)."""
        items = [ItemResult.from_dict(i) for i in data.get("items", [])]
        return summarise(
            items,
            name=str(data.get("name", "")),
            plan_hash=data.get("plan_hash"),
            extra=dict(data.get("extra") or {}),
        )


def summarise(
    items: Sequence[ItemResult],
    *,
    name: str,
    plan_hash: str | None = None,
    extra: dict[str, Any] | None = None,
) -> EvalResult:
    """Aggregate per-item results into an :class:`EvalResult`.

    Metrics are over the items that ran (items that could not run are counted apart). With
    none, accuracy, tokens and latencies are 0.0 and the interval is ``(0, 1)``.
    """
    ran = [i for i in items if i.ran]
    n = len(ran)
    k = sum(1 for i in ran if i.correct)
    low, high = wilson_interval(k, n)
    latencies = [i.latency_s for i in ran]
    return EvalResult(
        name=name,
        items=list(items),
        accuracy=k / n if n else 0.0,
        ci_low=low,
        ci_high=high,
        tokens_mean=sum(i.tokens for i in ran) / n if n else 0.0,
        latency_median_s=percentile(latencies, 50) or 0.0,
        latency_p95_s=percentile(latencies, 95) or 0.0,
        plan_hash=plan_hash,
        extra=dict(extra or {}),
    )


def gold_fields(plan: Plan, row: Mapping[str, Any]) -> list[str]:
    """The plan outputs that carry a gold value in ``row``."""
    return [name for name in plan.outputs if name in row]


def item_id(row: Mapping[str, Any], index: int) -> str:
    """A row's id: its ``id`` field, else its index."""
    value = row.get("id")
    return str(value) if value is not None else str(index)


def check_dataset(plan: Plan, rows: Sequence[Mapping[str, Any]], *, source: str = "") -> None:
    """Check every row has the plan's inputs and at least one gold output.

    Raises:
        DataError: naming the first bad row (1-based) and what it lacks.
    """
    if not plan.outputs:
        raise UsageError(
            f"plan {plan.name!r} declares no outputs, so there is nothing to score",
            hint="add an `outputs:` mapping to the plan",
        )
    for index, row in enumerate(rows):
        missing = [name for name in plan.inputs if name not in row]
        if missing:
            raise DataError(
                f"row lacks the plan input(s) {missing}",
                path=source or None,
                line=index + 1,
                hint=f"rows need the plan's inputs {sorted(plan.inputs)} at the top level",
            )
        if not gold_fields(plan, row):
            raise DataError(
                f"row has no gold value for any plan output {sorted(plan.outputs)}",
                path=source or None,
                line=index + 1,
                hint="put the expected answer under the plan's output name, e.g. 'answer'",
            )


def _shape(values: dict[str, Any]) -> Any:
    if len(values) == 1:
        return next(iter(values.values()))
    return values


def score_run(
    plan: Plan,
    row: Mapping[str, Any],
    result: RunResult,
    *,
    index: int = 0,
    latency_s: float | None = None,
    keep_trace: str = "failures",
) -> ItemResult:
    """Score one executor result against a row's gold values.

    Args:
        plan: The plan that ran.
        row: The dataset row (inputs + gold).
        result: The executor's result for this row.
        index: The row's position (used as id when the row has none).
        latency_s: Measured wall time; defaults to the trace's latency.
        keep_trace: ``"all"``, ``"failures"`` or ``"none"``.
    """
    fields = gold_fields(plan, row)
    types = declared_outputs(plan.metadata)  # a compiled plan's typed outputs, when it has them
    gold = {f: row[f] for f in fields}
    pred = {f: result.outputs.get(f) for f in fields}
    correct = bool(result.ok) and all(
        pred[f] is not None and answer_correct(pred[f], gold[f], types.get(f)) for f in fields
    )
    trace = result.trace
    student = trace.usage_by_role.get(STUDENT_ROLE)
    tokens = student.total_tokens if student is not None else trace.usage.total_tokens
    keep = keep_trace == "all" or (keep_trace == "failures" and not correct)
    return ItemResult(
        id=item_id(row, index),
        correct=correct,
        prediction=_shape(pred),
        gold=_shape(gold),
        tokens=int(tokens),
        latency_s=float(latency_s if latency_s is not None else trace.latency_s),
        ok=bool(result.ok),
        error=result.error,
        trace=trace.to_dict() if keep else None,
        error_kind=None if result.ok else run_error_kind(trace),
    )


async def run_items_inprocess(
    plan: Plan,
    rows: Sequence[Mapping[str, Any]],
    bindings: ModelBindings,
    *,
    sandbox: SandboxPool | None,
    seed: int = 0,
    concurrency: int = 1,
    executor_settings: ExecutorSettings | None = None,
    keep_trace: str = "failures",
    on_item: ItemCallback | None = None,
) -> list[ItemResult]:
    """Run and score ``rows`` in this process, at most ``concurrency`` items at once."""
    executor = Executor(bindings, sandbox=sandbox, settings=executor_settings)

    async def one(index: int, row: Mapping[str, Any]) -> ItemResult:
        inputs = {name: row[name] for name in plan.inputs}
        started = time.perf_counter()
        run = await executor.run(plan, inputs, seed=seed)
        elapsed = time.perf_counter() - started
        return score_run(plan, row, run, index=index, latency_s=elapsed, keep_trace=keep_trace)

    return await _map_rows(one, rows, concurrency=concurrency, on_item=on_item)


async def evaluate_plan_async(
    plan: Plan,
    dataset: Sequence[Mapping[str, Any]],
    bindings: ModelBindings,
    *,
    sandbox: SandboxPool | None,
    seed: int = 0,
    concurrency: int = 1,
    executor_settings: ExecutorSettings | None = None,
    keep_trace: str = "failures",
    on_item: ItemCallback | None = None,
) -> EvalResult:
    """Run ``plan`` on every row of ``dataset`` and score it (async).

    Args:
        plan: The plan to evaluate.
        dataset: Rows with the plan's inputs and gold values under its output names.
        bindings: Role -> backend (``{"student": ...}``).
        sandbox: The sandbox pool for code nodes (``None`` if the plan has none).
        seed: Run seed, passed to every item.
        concurrency: Items in flight at once (1 suits one local model on 2 cores).
        executor_settings: Timeouts and node concurrency; executor defaults otherwise.
        keep_trace: Which item traces to keep: ``"all"``, ``"failures"`` or ``"none"``.
        on_item: Called with each item's result as it finishes (progress bars).

    Returns:
        The aggregate :class:`EvalResult`.

    Raises:
        DataError: a row lacks a plan input or any gold value.
    """
    check_dataset(plan, dataset)
    items = await run_items_inprocess(
        plan,
        dataset,
        bindings,
        sandbox=sandbox,
        seed=seed,
        concurrency=concurrency,
        executor_settings=executor_settings,
        keep_trace=keep_trace,
        on_item=on_item,
    )
    return summarise(items, name=plan.name, plan_hash=plan_hash(plan))


def evaluate_plan(
    plan: Plan,
    dataset: Sequence[Mapping[str, Any]],
    bindings: ModelBindings,
    *,
    sandbox: SandboxPool | None,
    seed: int = 0,
    concurrency: int = 1,
    executor_settings: ExecutorSettings | None = None,
    keep_trace: str = "failures",
    on_item: ItemCallback | None = None,
) -> EvalResult:
    """Synchronous :func:`evaluate_plan_async` (runs its own event loop).

    Raises:
        UsageError: when called from a running event loop (use :func:`evaluate_plan_async`).
    """
    return run_sync(
        evaluate_plan_async(
            plan,
            dataset,
            bindings,
            sandbox=sandbox,
            seed=seed,
            concurrency=concurrency,
            executor_settings=executor_settings,
            keep_trace=keep_trace,
            on_item=on_item,
        ),
        name="evaluate_plan",
        use_instead="evaluate_plan_async(...)",
    )


def score_prediction(
    row: Mapping[str, Any],
    prediction: Prediction,
    *,
    index: int = 0,
    answer_field: str = "answer",
    keep_trace: str = "failures",
    task: TaskSpec | None = None,
) -> ItemResult:
    """Score one method prediction against the row's gold ``answer_field`` (or, for a typed
    ``task``, every output with the task's metric: correct when all outputs are right)."""
    gold: Any
    if task is not None:
        golds = {name: row.get(name) for name in task.outputs}
        gold = golds if len(golds) > 1 else next(iter(golds.values()))
        score = default_metric(task)(row, prediction.outputs or {})
        correct = bool(score.fields) and score.value == 1.0
    else:
        gold = row.get(answer_field)
        correct = (
            prediction.answer is not None
            and gold is not None
            and answer_correct(prediction.answer, gold)
        )
    keep = keep_trace == "all" or (keep_trace == "failures" and not correct)
    trace: dict[str, Any] | None = None
    if keep:
        trace = {**prediction.trace, "raw": prediction.raw}
    return ItemResult(
        id=item_id(row, index),
        correct=bool(correct),
        prediction=prediction.answer,
        gold=gold,
        tokens=prediction.usage.total_tokens,
        latency_s=prediction.latency_s,
        ok=prediction.error is None,
        error=prediction.error,
        trace=trace,
        error_kind=_prediction_error_kind(prediction),
    )


def _prediction_error_kind(prediction: Prediction) -> str | None:
    """Why a method's prediction could not run, from the plan runs in its trace."""
    if prediction.error is None:
        return None
    runs: list[Any] = [prediction.trace.get("run"), *(prediction.trace.get("runs") or [])]
    for run in runs:
        if isinstance(run, Mapping):
            kind = trace_error_kind(run)
            if kind is not None:
                return kind
    return None


async def predict_items(
    method: Method,
    prepared: Prepared,
    rows: Sequence[Mapping[str, Any]],
    *,
    student: Backend,
    sandbox: SandboxPool | None,
    seed: int = 0,
    concurrency: int = 1,
    keep_trace: str = "failures",
    on_item: ItemCallback | None = None,
) -> list[ItemResult]:
    """Predict every row with a prepared method and score it, ``concurrency`` at a time."""

    async def one(index: int, row: Mapping[str, Any]) -> ItemResult:
        prediction = await method.predict(
            prepared, row, student=student, sandbox=sandbox, seed=seed
        )
        return score_prediction(
            row, prediction, index=index, keep_trace=keep_trace, task=prepared.task
        )

    return await _map_rows(one, rows, concurrency=concurrency, on_item=on_item)


async def _map_rows(
    fn: Callable[[int, Mapping[str, Any]], Awaitable[ItemResult]],
    rows: Sequence[Mapping[str, Any]],
    *,
    concurrency: int,
    on_item: ItemCallback | None,
) -> list[ItemResult]:
    """``fn(index, row)`` for every row, at most ``concurrency`` at once; results in row order.

    ``on_item`` sees each result as soon as it is ready (completion order). A row whose
    model endpoint, sandbox or budget fails becomes an item that could not run.
    """
    if concurrency < 1:
        raise UsageError(f"concurrency must be >= 1, not {concurrency}")
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int, row: Mapping[str, Any]) -> ItemResult:
        async with gate:
            try:
                item = await fn(index, row)
            except (BackendError, BudgetExceeded, SandboxError) as exc:
                kind = exception_error_kind(exc)
                if kind is None:
                    raise
                item = ItemResult(
                    id=item_id(row, index),
                    correct=False,
                    ok=False,
                    error=str(exc),
                    error_kind=kind,
                )
        if on_item is not None:
            on_item(item)
        return item

    return list(await asyncio.gather(*(one(i, r) for i, r in enumerate(rows))))
