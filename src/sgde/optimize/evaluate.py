"""Scoring a plan on the training rows: the forward pass of the loop and the two losses.

* **end-to-end loss** — ``1 - mean score`` of the task metric over every (row, repeat) pair;
  a metric may return a feedback text per row (it feeds the teacher's critique);
* **node loss** — supervised error with partial credit: for every LLM node (the only nodes
  that can be wrong on their own: code and votes follow their inputs) the fraction of
  (row, repeat, field) triples whose value differs from the expected value (from the
  teacher's verified solutions and the lifted parameters), averaged over the LLM nodes that
  have expected values. An offload that moves the error out of a whole-answer node into one
  field of an extraction lowers it even when the end-to-end loss ties.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgde.optimize.supervision import node_outputs, node_statistics
from sgde.plan.model import LlmNode, Plan
from sgde.runtime.backend import Usage
from sgde.runtime.executor import Executor, RunResult
from sgde.runtime.trace import write_traces
from sgde.task import Metric, Score, row_where, safe_score

__all__ = ["PlanEval", "evaluate_plan_rows", "node_errors", "node_loss"]

Expected = Mapping[str, Sequence[Mapping[str, Any] | None]]


@dataclass
class PlanEval:
    """One plan scored on the training rows, k repeats.

    Attributes:
        loss: End-to-end loss, ``1 - mean score`` over (row, repeat) pairs.
        scores: ``scores[repeat][row]`` in [0, 1].
        feedback: ``feedback[repeat][row]``: the metric's text ("" when none).
        outputs: ``outputs[repeat][row]``: every node's output of that run.
        finals: ``finals[repeat][row]``: the plan outputs of that run.
        results: The executor's results.
        student_tokens: Student tokens of all runs.
        usage: Their usage.
        node_loss: Supervised node-level error (see the module docstring); ``None`` until
            :func:`node_loss` has been computed for it.
    """

    loss: float
    scores: list[list[float]]
    feedback: list[list[str]]
    outputs: list[list[dict[str, dict[str, Any] | None]]]
    finals: list[list[dict[str, Any]]]
    results: list[list[RunResult]]
    student_tokens: int
    usage: Usage
    node_loss: float | None = field(default=None)

    @property
    def perfect(self) -> bool:
        return all(s >= 1.0 for rep in self.scores for s in rep)


async def evaluate_plan_rows(
    executor: Executor,
    plan: Plan,
    rows: Sequence[Mapping[str, Any]],
    *,
    metric: Metric,
    rows_where: str = "rows",
    repeats: int,
    seed: int,
    trace_path: Path | None = None,
) -> PlanEval:
    """Run ``plan`` on ``rows`` ``repeats`` times (seeds ``seed..seed+k-1``) and score it.

    A failed run scores 0. A metric that raises or returns something that is not a score
    stops the compile with a :class:`~sgde.errors.TaskMetricError` naming the row.
    """
    scores: list[list[float]] = []
    feedback: list[list[str]] = []
    outputs: list[list[dict[str, dict[str, Any] | None]]] = []
    finals: list[list[dict[str, Any]]] = []
    results: list[list[RunResult]] = []
    usage = Usage()
    for r in range(repeats):
        batch = await executor.run_batch(plan, list(rows), seed=seed + r)
        rep_scores: list[float] = []
        rep_feedback: list[str] = []
        for i, (row, res) in enumerate(zip(rows, batch, strict=False)):
            usage = usage + res.trace.usage
            if res.ok:
                score: Score = safe_score(metric, row, res.outputs, where=_where(rows_where, i + 1))
                rep_scores.append(min(1.0, max(0.0, score.value)))
                rep_feedback.append(score.feedback)
            else:
                rep_scores.append(0.0)
                rep_feedback.append(f"the plan failed: {res.error}" if res.error else "")
        scores.append(rep_scores)
        feedback.append(rep_feedback)
        outputs.append([node_outputs(res.trace) for res in batch])
        finals.append([dict(res.outputs) for res in batch])
        results.append(batch)
    if trace_path is not None:
        trace_path.parent.mkdir(parents=True, exist_ok=True)
        write_traces(trace_path, [res.trace for batch in results for res in batch])
    flat = [s for rep in scores for s in rep]
    loss = 1.0 - sum(flat) / len(flat) if flat else 1.0
    return PlanEval(loss, scores, feedback, outputs, finals, results, usage.total_tokens, usage)


def _where(rows_where: str, number: int) -> str:
    return f"training row {number}" if rows_where == "rows" else row_where(rows_where, number)


def node_errors(plan: Plan, evaluation: PlanEval, expected: Expected) -> dict[str, float]:
    """Per LLM node with expected values, its supervised error with partial credit: the
    mean over its fields of the fraction of (row, repeat) pairs where the field is wrong."""
    stats = node_statistics(plan, evaluation.outputs, expected)
    out: dict[str, float] = {}
    for node in plan.nodes:
        if not isinstance(node, LlmNode):
            continue
        st = stats.get(node.id)
        if st is None:
            continue
        per_field = [f.error_rate for f in st.fields.values() if f.error_rate is not None]
        if per_field:
            out[node.id] = sum(per_field) / len(per_field)
    return out


def node_loss(plan: Plan, evaluation: PlanEval, expected: Expected) -> float | None:
    """Supervised error with partial credit over the plan's LLM nodes (``None``: none
    of them has an expected value). Also stored in ``evaluation.node_loss``."""
    rates = list(node_errors(plan, evaluation, expected).values())
    value = sum(rates) / len(rates) if rates else None
    if value is None and not any(isinstance(n, LlmNode) for n in plan.nodes):
        value = 0.0  # no student call left: nothing the student can get wrong
    evaluation.node_loss = value
    return value
