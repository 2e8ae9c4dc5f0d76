"""Supervision for every task type: the teacher solves each training row as code.

For each training row the teacher writes ``solution()`` returning all the task's outputs,
sampled several times — two prompt styles (``direct``: copy the values into variables, then
compute; ``plan``: say how in comments first), greedy then at ``temperature`` with distinct
seeds. Every sample runs in the sandbox through the JSON harness (its intermediate values
recorded), its result is read as the task's typed outputs and scored by the task metric.
ALL verified samples are kept (distinct code only): they feed solve-then-lift and give
node-level expected values. A weak teacher's wrong or malformed sample costs one call and
is recorded as an event; it never ends the compile.

A row with no verified sample gets ``repairs`` repair calls (default one; greedy, then
sampled: a sampled second repair of the 1.5B teacher never verified on the shipping-price
and refund-workflow rows, and repeated the failed code on 2 of 4). The teacher is shown the
row's first sample that defined ``solution()`` (then its latest failed repair), the row's
expected outputs and what the sample did (the sandbox error, or what it returned), and is
asked for a corrected version (measured on the shipping-price family at 574c3a6: every
sample failed on one undefined name or one misread rule, so no row was verified and nothing
could be lifted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sgde.optimize.events import CompileEvent, EventSink, emit
from sgde.optimize.sources.code import clean_code, entry_params, run_harnessed
from sgde.optimize.sources.context import read_outputs, row_inputs, task_context, value_text
from sgde.optimize.teacher import Teacher, render_prompt
from sgde.runtime.calls import CodeRunner
from sgde.task import Metric, TaskSpec, safe_score

__all__ = ["STYLES", "RowSolution", "SolveAttempt", "sample_plan", "solve_rows", "verify_solution"]

STYLES: dict[str, str] = {"direct": "solve_row.j2", "plan": "solve_row_plan.j2"}
"""Prompt styles of a row solution and their templates."""

_PASS = 1.0 - 1e-9


@dataclass(frozen=True)
class RowSolution:
    """One teacher solution of ONE training row, verified by the task metric.

    Attributes:
        row: Index into the training rows.
        code: ``def solution()`` as the teacher wrote it (literals inlined).
        outputs: What it returned, read as the task's typed outputs.
        intermediates: ``name -> value`` of every variable its body assigned (JSON values).
        style: Prompt style and sampling of the call that produced it (``"direct@0.0"``).
    """

    row: int
    code: str
    outputs: dict[str, Any]
    intermediates: dict[str, Any] = field(default_factory=dict)
    style: str = "direct@0.0"

    def to_dict(self) -> dict[str, Any]:
        """JSON form (for checkpoints)."""
        return {
            "row": self.row,
            "code": self.code,
            "outputs": self.outputs,
            "intermediates": self.intermediates,
            "style": self.style,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RowSolution:
        """Read :meth:`to_dict`'s form."""
        return cls(
            row=int(data["row"]),
            code=str(data["code"]),
            outputs=dict(data.get("outputs", {})),
            intermediates=dict(data.get("intermediates", {})),
            style=str(data.get("style", "direct@0.0")),
        )


@dataclass(frozen=True)
class SolveAttempt:
    """One sampled call: its prompt style, temperature and seed."""

    style: str
    temperature: float
    seed: int

    @property
    def label(self) -> str:
        """``style@temperature`` (plus the seed when sampled)."""
        if self.temperature == 0:
            return f"{self.style}@0.0"
        return f"{self.style}@{self.temperature:g}#{self.seed}"


def sample_plan(samples: int, *, seed: int, temperature: float = 0.7) -> list[SolveAttempt]:
    """The calls of one row, in order: each style greedy, then sampled with new seeds.

    Greedy decoding ignores the seed, so each style is asked greedily once; further
    samples alternate the styles at ``temperature``.
    """
    styles = list(STYLES)
    plan: list[SolveAttempt] = []
    for k in range(max(0, samples)):
        style = styles[k % len(styles)]
        if k < len(styles):
            plan.append(SolveAttempt(style, 0.0, seed))
        else:
            plan.append(SolveAttempt(style, temperature, seed + 7919 * k))
    return plan


async def verify_solution(
    sandbox: CodeRunner,
    task: TaskSpec,
    row: Mapping[str, Any],
    metric: Metric,
    code: str,
    *,
    where: str,
) -> tuple[dict[str, Any], dict[str, Any]] | str:
    """Run ``solution()`` in the sandbox and score it: ``(outputs, intermediates)`` when the
    metric gives it full marks, else the reason (for events and reports).

    Raises:
        TaskMetricError: when the user's metric raises on well-typed outputs.
    """
    params = entry_params(code, "solution")
    if params is None:
        return "the code defines no function solution() (or does not parse)"
    if params:
        return f"solution() must take no arguments, it takes ({', '.join(params)})"
    run = await run_harnessed(sandbox, code, "solution", {})
    if not run.ok:
        return f"running it failed: {run.error}"
    outputs = read_outputs(run.result, task.outputs)
    if isinstance(outputs, str):
        return outputs
    score = safe_score(metric, row, outputs, where=where)
    if score.value < _PASS:
        detail = f" ({score.feedback})" if score.feedback else ""
        return f"it returned {value_text(outputs, 120)}, scored {score.value:.2f}{detail}"
    return outputs, dict(run.variables or {})


async def solve_rows(
    teacher: Teacher,
    sandbox: CodeRunner,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    metric: Metric,
    *,
    samples: int,
    seed: int,
    temperature: float = 0.7,
    enough: int | None = None,
    repairs: int = 1,
    events: EventSink | None = None,
) -> list[list[RowSolution]]:
    """The teacher solves each training row as code; keep every verified solution.

    Args:
        teacher: The structured teacher.
        sandbox: Runs all teacher code (never this process).
        task: The task (the prompt shows its description, fields and types).
        rows: Training rows (inputs and gold outputs).
        metric: The task metric; a solution is verified when it scores 1.
        samples: Calls per row (see :func:`sample_plan`).
        seed: Base seed (row ``i`` uses ``seed + 1000 * i``).
        temperature: Temperature of the sampled calls.
        enough: Stop sampling a row once this many distinct verified solutions are found
            (``None``: use every sample).
        repairs: Repair calls for a row no sample solved (see the module docstring).
        events: Progress listener (one ``supervision`` event per row).

    Returns:
        Per row, its verified solutions (possibly none), distinct code only.

    Raises:
        TaskMetricError: when the user's metric raises.
        BudgetExceeded: from a metered teacher; never swallowed.
    """
    context = task_context(task)
    out: list[list[RowSolution]] = []
    for i, row in enumerate(rows):
        case = {k: value_text(v) for k, v in row_inputs(task, row).items()}
        found: list[RowSolution] = []
        seen: set[str] = set()
        reasons: list[str] = []
        failed: tuple[str, str] | None = None
        for attempt in sample_plan(samples, seed=seed + 1000 * i, temperature=temperature):
            if enough is not None and len(found) >= enough:
                break
            prompt = render_prompt(STYLES[attempt.style], case=case, **context)
            code = clean_code(
                await teacher.code(
                    prompt,
                    purpose="solve",
                    temperature=attempt.temperature,
                    seed=attempt.seed,
                )
            )
            key = code.strip()
            if key in seen:
                reasons.append(f"{attempt.label}: same code as an earlier sample")
                continue
            seen.add(key)
            checked = await verify_solution(
                sandbox, task, row, metric, code, where=f"training row {i + 1}"
            )
            if isinstance(checked, str):
                reasons.append(f"{attempt.label}: {checked}")
                if failed is None and entry_params(code, "solution") == []:
                    failed = (code, checked)
                continue
            outputs, intermediates = checked
            found.append(RowSolution(i, code, outputs, intermediates, attempt.label))
        for r in range(repairs if not found else 0):
            if failed is None:
                break
            code = clean_code(
                await teacher.code(
                    render_prompt(
                        "repair_row.j2",
                        code=failed[0],
                        case=case,
                        expected=value_text({o: row.get(o) for o in task.outputs}),
                        outcome=failed[1],
                        **context,
                    ),
                    purpose="repair",
                    temperature=0.0 if r == 0 else temperature,
                    seed=seed + 1000 * i + 31 * r,
                )
            )
            label = f"repair@{0.0 if r == 0 else temperature:g}"
            if code.strip() in seen:  # the greedy repair repeats it: a sampled one may not
                reasons.append(f"{label}: same code as an earlier sample")
                continue
            seen.add(code.strip())
            checked = await verify_solution(
                sandbox, task, row, metric, code, where=f"training row {i + 1}"
            )
            if isinstance(checked, str):
                reasons.append(f"{label}: {checked}")
                failed = (code, checked) if entry_params(code, "solution") == [] else failed
                continue
            found.append(RowSolution(i, code, checked[0], checked[1], label))
            break
        emit(
            events,
            CompileEvent(
                "supervision",
                teacher.iteration,
                f"row {i + 1}: {len(found)} verified solution(s) of {len(seen)} distinct sample(s)",
                teacher_tokens=teacher.usage.total_tokens,
                data={"row": i, "verified": len(found), "failures": reasons[-4:]},
            ),
        )
        out.append(found)
    return out
