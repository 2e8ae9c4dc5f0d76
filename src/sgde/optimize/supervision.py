"""Node-level supervision: the teacher as a statistical prior.

1. :func:`solve_examples` — the teacher solves each training example as a Python
   ``solution()`` (PAL-style), run in the sandbox; a solution is kept only when it reproduces
   the gold answer. Top-level variables of a verified solution are recorded too.
2. :func:`expected_values` — expected per-node field values per training row: plan outputs
   from the gold answers (also for the node a consensus node wraps), fields of extraction
   nodes from the lifted parameter values, and fields named like a variable of the verified
   solution from that variable.
3. :func:`node_statistics` — per node: error rate vs those expected values over all
   (row, repeat) pairs, disagreement across the k repeats, accuracy of the per-row majority.
   sgde computes these; the teacher is not asked for statistics.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sgde.errors import SandboxError
from sgde.optimize.sources.code import instrument
from sgde.optimize.teacher import Teacher, render_prompt
from sgde.plan import node_fields
from sgde.plan.model import ConsensusNode, LlmNode, Plan
from sgde.plan.refs import parse_ref
from sgde.runtime.calls import CodeRunner
from sgde.runtime.numbers import numbers_match, to_number, vote_key
from sgde.task import answer_correct

__all__ = [
    "FieldStats",
    "NodeStats",
    "Solution",
    "expected_values",
    "node_outputs",
    "node_statistics",
    "row_text",
    "run_code",
    "solve_examples",
]


@dataclass(frozen=True)
class Solution:
    """A teacher ``solution()`` verified against one row's gold answer."""

    row: int
    code: str
    answer: Any
    variables: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "code": self.code,
            "answer": self.answer,
            "variables": self.variables,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Solution:
        return cls(
            int(data["row"]), str(data["code"]), data["answer"], dict(data.get("variables", {}))
        )


def row_text(plan: Plan, row: Mapping[str, Any]) -> str:
    """The task text of a row: its string-valued plan inputs, joined."""
    names = list(plan.inputs) or [k for k, v in row.items() if isinstance(v, str)]
    parts = [str(row[n]) for n in names if isinstance(row.get(n), str)]
    return "\n".join(parts)


async def run_code(sandbox: CodeRunner, code: str, kwargs: Mapping[str, Any], entry: str) -> Any:
    """Run untrusted ``code`` in the sandbox (never in this process)."""
    return await sandbox.call(code, dict(kwargs), entry=entry)


async def _check_solution(
    sandbox: CodeRunner, code: str, gold: Any
) -> tuple[bool, Any, dict[str, float], str]:
    """(verified, answer, numeric variables, feedback for a retry)."""
    try:
        answer = await run_code(sandbox, code, {}, "solution")
    except SandboxError as exc:
        return False, None, {}, f"Running it failed: {exc.message}"
    if isinstance(answer, dict) and len(answer) == 1:
        answer = next(iter(answer.values()))
    if not numbers_match(answer, gold):
        return False, answer, {}, f"It returned {answer!r}, which is not the right answer."
    variables: dict[str, float] = {}
    try:
        instrumented: str | None = instrument(code, "solution")
    except (SyntaxError, ValueError):
        instrumented = None
    if instrumented is not None:
        try:
            out = await run_code(sandbox, instrumented, {}, "solution")
            raw_vars = out.get("vars", {}) if isinstance(out, dict) else {}
            for k, v in raw_vars.items():
                num = to_number(v) if not isinstance(v, str) else None
                if num is not None:
                    variables[str(k)] = num
        except SandboxError:
            variables = {}
    return True, answer, variables, ""


async def solve_examples(
    teacher: Teacher,
    sandbox: CodeRunner,
    texts: Sequence[str],
    golds: Sequence[Any],
    *,
    attempts: int,
    temperature: float,
    seed: int,
    first_temperature: float = 0.0,
) -> list[Solution | None]:
    """The teacher solves each example as code; keep solutions reproducing the gold answer.

    The first attempt per row uses ``first_temperature`` (greedy by default); retries are
    sampled (``temperature``, distinct seeds) and shown the previous code and what was wrong
    with it.
    """
    solutions: list[Solution | None] = []
    for i, (text, gold) in enumerate(zip(texts, golds, strict=False)):
        found: Solution | None = None
        previous, feedback = "", ""
        for attempt in range(attempts):
            prompt = render_prompt("solve.j2", text=text, previous=previous, feedback=feedback)
            code = await teacher.code(
                prompt,
                purpose="solve",
                temperature=first_temperature if attempt == 0 else temperature,
                seed=seed + 1000 * i + attempt,
            )
            ok, answer, variables, feedback = await _check_solution(sandbox, code, gold)
            if ok:
                found = Solution(i, code, answer, variables)
                break
            previous = code
        solutions.append(found)
    return solutions


def _consensus_of(plan: Plan) -> dict[str, str]:
    return {n.id: n.of for n in plan.nodes if isinstance(n, ConsensusNode)}


def expected_values(
    plan: Plan,
    rows: Sequence[Mapping[str, Any]],
    solutions: Sequence[Solution | None],
    lifted: Mapping[str, Sequence[Mapping[str, Any] | None]] | None = None,
) -> dict[str, list[dict[str, Any] | None]]:
    """Expected field values per node and training row (``None``: unknown for that row).

    Args:
        plan: The plan.
        rows: Training rows (gold values under the plan's output names).
        solutions: Verified teacher solutions per row.
        lifted: Expected values of extraction nodes, ``node_id -> per-row values``.
    """
    wraps = _consensus_of(plan)
    out: dict[str, list[dict[str, Any] | None]] = {}

    def put(node_id: str, i: int, fname: str, value: Any) -> None:
        per_row = out.setdefault(node_id, [None] * len(rows))
        if per_row[i] is None:
            per_row[i] = {}
        slot = per_row[i]
        assert slot is not None
        slot.setdefault(fname, value)

    for i, row in enumerate(rows):
        for name, ref_text in plan.outputs.items():
            if name not in row:
                continue
            ref = parse_ref(ref_text)
            if ref.is_input:
                continue
            put(ref.source, i, ref.field, row[name])
            if ref.source in wraps:
                put(wraps[ref.source], i, ref.field, row[name])
        for node_id, per_row in (lifted or {}).items():
            values = per_row[i] if i < len(per_row) else None
            for fname, value in (values or {}).items():
                put(node_id, i, fname, value)
                for vote_id, of in wraps.items():
                    if of == node_id:
                        put(vote_id, i, fname, value)
        sol = solutions[i] if i < len(solutions) else None
        if sol is not None and sol.variables:
            for node in plan.nodes:
                if isinstance(node, LlmNode):
                    for fname in node.fields():
                        if fname in sol.variables:
                            put(node.id, i, fname, sol.variables[fname])
    return out


@dataclass(frozen=True)
class FieldStats:
    """Statistics of one node field."""

    error_rate: float | None
    disagreement: float


@dataclass(frozen=True)
class NodeStats:
    """Per-node statistics over the training rows and k repeats.

    Attributes:
        node_id: The node.
        kind: ``llm``, ``code`` or ``consensus``.
        n_fields: Output fields of the node.
        error_rate: Fraction of (row, repeat) pairs with any expected field wrong (``None``
            when no expected value is known for the node).
        disagreement: Fraction of rows whose repeats do not all agree.
        mode_accuracy: Fraction of supervised rows whose per-field majority over repeats is
            right (``None`` when unsupervised).
        failures: Fraction of (row, repeat) pairs where the node failed to produce output.
        fields: Per-field statistics.
    """

    node_id: str
    kind: str
    n_fields: int
    error_rate: float | None
    disagreement: float
    mode_accuracy: float | None
    failures: float
    fields: dict[str, FieldStats]

    def describe(self) -> str:
        """One line for prompts and reports."""
        err = "unsupervised" if self.error_rate is None else f"error {self.error_rate:.0%}"
        mode = "" if self.mode_accuracy is None else f", majority right {self.mode_accuracy:.0%}"
        worst = [
            f"{k} {v.error_rate:.0%}"
            for k, v in self.fields.items()
            if v.error_rate is not None and v.error_rate > 0
        ]
        per_field = f"; wrong fields: {', '.join(worst)}" if worst else ""
        return (
            f"{self.node_id} ({self.kind}): {err}, disagreement {self.disagreement:.0%}"
            f"{mode}, failed {self.failures:.0%}{per_field}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "kind": self.kind,
            "n_fields": self.n_fields,
            "error_rate": self.error_rate,
            "disagreement": self.disagreement,
            "mode_accuracy": self.mode_accuracy,
            "failures": self.failures,
            "fields": {
                k: {"error_rate": v.error_rate, "disagreement": v.disagreement}
                for k, v in self.fields.items()
            },
        }


def node_outputs(trace: Any) -> dict[str, dict[str, Any] | None]:
    """``node_id -> output`` of one run trace (``None`` for nodes that failed)."""
    nodes = trace.nodes
    items = nodes.values() if isinstance(nodes, Mapping) else nodes
    out: dict[str, dict[str, Any] | None] = {}
    for nt in items:
        output = nt.output if getattr(nt, "error", None) is None else None
        out[nt.node_id] = dict(output) if isinstance(output, Mapping) else None
    return out


def _match(pred: Any, gold: Any) -> bool:
    return answer_correct(pred, gold)


def node_statistics(
    plan: Plan,
    outputs: Sequence[Sequence[Mapping[str, Mapping[str, Any] | None]]],
    expected: Mapping[str, Sequence[Mapping[str, Any] | None]],
) -> dict[str, NodeStats]:
    """Per-node statistics.

    Args:
        plan: The plan that ran.
        outputs: ``outputs[repeat][row]`` is :func:`node_outputs` of that run.
        expected: From :func:`expected_values`.
    """
    stats: dict[str, NodeStats] = {}
    n_rep = len(outputs)
    n_rows = len(outputs[0]) if outputs else 0
    wraps = _consensus_of(plan)
    for node in plan.nodes:
        source = node.id
        if node.id in wraps.values():
            # A wrapped node does not run on its own; its samples show in the vote node.
            vote_ids = [v for v, of in wraps.items() if of == node.id]
            source = vote_ids[0]
        fields = node_fields(plan, node.id) or []
        exp_rows = expected.get(node.id, [None] * n_rows)
        wrong_pairs = 0
        supervised_pairs = 0
        failed = 0
        disagree_rows = 0
        mode_right = 0
        mode_rows = 0
        field_wrong: Counter[str] = Counter()
        field_total: Counter[str] = Counter()
        field_disagree: Counter[str] = Counter()
        for i in range(n_rows):
            per_rep = [outputs[r][i].get(source) for r in range(n_rep)]
            failed += sum(1 for o in per_rep if o is None)
            seen_fields = set(fields)
            for o in per_rep:
                if o:
                    seen_fields |= set(o)
            row_disagree = False
            for fname in seen_fields:
                keys = {vote_key(o.get(fname)) if o else None for o in per_rep}
                if len(keys) > 1:
                    field_disagree[fname] += 1
                    row_disagree = True
            disagree_rows += row_disagree
            exp = exp_rows[i] if i < len(exp_rows) else None
            if not exp:
                continue
            mode_rows += 1
            mode_ok = True
            for fname, gold in exp.items():
                values = [o.get(fname) if o else None for o in per_rep]
                counts = Counter(vote_key(v) for v in values)
                top = counts.most_common(1)[0][0]
                top_value = next(v for v in values if vote_key(v) == top)
                if top_value is None or not _match(top_value, gold):
                    mode_ok = False
            mode_right += mode_ok
            for o in per_rep:
                supervised_pairs += 1
                pair_wrong = False
                for fname, gold in exp.items():
                    field_total[fname] += 1
                    if o is None or not _match(o.get(fname), gold):
                        field_wrong[fname] += 1
                        pair_wrong = True
                wrong_pairs += pair_wrong
        all_fields = list(dict.fromkeys([*fields, *field_total, *field_disagree]))
        stats[node.id] = NodeStats(
            node_id=node.id,
            kind=node.kind,
            n_fields=len(fields),
            error_rate=wrong_pairs / supervised_pairs if supervised_pairs else None,
            disagreement=disagree_rows / n_rows if n_rows else 0.0,
            mode_accuracy=mode_right / mode_rows if mode_rows else None,
            failures=failed / (n_rows * n_rep) if n_rows and n_rep else 0.0,
            fields={
                f: FieldStats(
                    field_wrong[f] / field_total[f] if field_total[f] else None,
                    field_disagree[f] / n_rows if n_rows else 0.0,
                )
                for f in all_fields
            },
        )
    return stats
