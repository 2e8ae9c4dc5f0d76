"""The loop's supervision and its source of verified programs (over :mod:`sgde.optimize.sources`).

* :meth:`SupervisionSource.supervise` — the teacher solves every training row as code
  returning all outputs, several samples per row, verified by the task metric
  (``sources.solve_rows``); the verified solutions give node-level expected values (their
  intermediate variables) and, for a single numeric output, the solve-then-lift path.
* :meth:`SupervisionSource.programs` — program candidates for an offload target
  (``sources.program_candidates``: typed solve-then-lift, whole-task code, enumerative
  search). For a node whose fields are not the task's outputs (an intermediate node of a
  multi-node workflow), the candidates are sought for the *sub-task* the node performs: its
  inputs (plan inputs, or upstream fields with known expected values) → its used fields,
  with the expected values as gold.
* :meth:`SupervisionSource.parsers` — verified parsing code for extraction fields: sgde's
  deterministic readers first (``sources.reader_candidates``, no tokens), the teacher's
  parsers when the readers do not get every field.

Every hypothesis a source examined is counted (``searched``) for the PAC statement.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sgde.optimize.operators.offload import OffloadTarget
from sgde.optimize.operators.program_nodes import ParserLike, ProgramLike
from sgde.optimize.sources import (
    Program,
    RowSolution,
    parser_candidates,
    program_candidates,
    reader_candidates,
    solve_rows,
)
from sgde.optimize.supervision import Solution
from sgde.plan.model import LlmNode, Plan
from sgde.plan.refs import parse_ref
from sgde.runtime.numbers import to_number
from sgde.task import FieldType, Metric, TaskSpec, default_metric, infer_type

if TYPE_CHECKING:
    from sgde.optimize.loop import CompileLoop
    from sgde.optimize.operators.registry import EditContext

__all__ = ["SupervisionSource"]


class SupervisionSource:
    """Verified teacher material of one compile (implements ``ProgramSource``)."""

    def __init__(self, loop: CompileLoop) -> None:
        self.loop = loop
        self.row_solutions: list[list[dict[str, Any]]] = []
        self._programs: dict[str, Program] = {}
        self._cache: dict[tuple[str, tuple[str, ...]], list[Program]] = {}

    # -------------------------------------------------------------- state

    @property
    def solutions(self) -> Sequence[Solution | None]:
        return self.loop.state.solutions

    def restore(self) -> None:
        """Take the material of a restored checkpoint."""
        state = self.loop.state
        self.row_solutions = [list(r) for r in state.row_solutions]
        self._programs = {k: Program.from_dict(v) for k, v in state.programs.items()}

    def has_material(self) -> bool:
        """Whether supervision has run (sources that need no verified row still apply)."""
        return self.loop.state.supervised

    def program_of(self, node_id: str) -> ProgramLike | None:
        return self._programs.get(node_id)

    def remember(self, node_id: str, program: ProgramLike) -> None:
        if isinstance(program, Program):
            self._programs[node_id] = program
            self.loop.state.programs[node_id] = program.to_dict()

    def searched_by_origin(self) -> dict[str, int]:
        return dict(self.loop.state.searched_by)

    def _count(self, origin: str, searched: int) -> None:
        state = self.loop.state
        state.searched += searched
        state.searched_by[origin] = state.searched_by.get(origin, 0) + searched

    # -------------------------------------------------------------- supervision

    async def supervise(self, plan: Plan) -> None:
        """Solve every training row as verified code (all outputs, several samples)."""
        loop = self.loop
        state = loop.state
        state.supervised = True
        settings = loop.settings
        loop.event("supervision", f"teacher solves the {len(loop.rows)} training rows as code")
        solved: list[list[RowSolution]] = await solve_rows(
            loop.teacher,
            loop.sandbox,
            _with_step_names(loop.task, plan),
            loop.rows,
            loop.metric,
            samples=settings.program_samples,
            seed=settings.seed,
            temperature=settings.candidate_temperature,
            events=loop.events,
        )
        self.row_solutions = [[s.to_dict() for s in per_row] for per_row in solved]
        state.row_solutions = self.row_solutions
        state.solutions = _single_output(loop.task, solved)
        verified = sum(1 for per_row in solved if per_row)
        loop.report.supervision = {
            "verified": verified,
            "rows": len(loop.rows),
            "solutions": sum(len(per_row) for per_row in solved),
        }
        loop.event("supervision", f"{verified}/{len(loop.rows)} rows solved by verified code")

    # -------------------------------------------------------------- programs

    def _subtask(
        self, plan: Plan, target: OffloadTarget, expected: Mapping[str, Any]
    ) -> tuple[TaskSpec, list[dict[str, Any]], Metric] | str:
        """The task ``target``'s node performs, its rows and metric (or why there is none)."""
        loop = self.loop
        task = loop.task
        outputs_of_plan = {parse_ref(r).field: name for name, r in plan.outputs.items()}
        node = target.node
        fields = list(target.fields)
        is_output = all(
            any(
                parse_ref(r).source in (node.id, target.vote_id) and parse_ref(r).field == f
                for r in plan.outputs.values()
            )
            for f in fields
        )
        if (
            is_output
            and set(task.inputs) == set(target.text_inputs.values())
            and all(outputs_of_plan.get(f) == f for f in fields)
            and set(fields) == set(task.outputs)
        ):
            return task, loop.rows, loop.metric
        exp_rows = expected.get(node.id) or []
        n = len(loop.rows)
        # a node reading only upstream fields needs no extraction, so its code is verified on
        # the rows where its inputs and outputs are all known (at least two); a node reading
        # plan inputs needs every row (its extraction is supervised row by row)
        partial = not target.text_inputs
        inputs: dict[str, FieldType] = {}
        columns: dict[str, list[Any]] = {}
        for param, ref_text in node.inputs.items():
            ref = parse_ref(ref_text)
            if ref.is_input:
                if ref.field not in task.inputs:
                    return f"{node.id} reads input {ref.field!r} the task does not have"
                inputs[param] = task.inputs[ref.field]
                columns[param] = [row.get(ref.field) for row in loop.rows]
                continue
            upstream = list(expected.get(ref.source) or [])
            values = [u.get(ref.field) if u else None for u in upstream]
            values += [None] * (n - len(values))
            if not partial and any(v is None for v in values):
                return f"{node.id} reads {ref_text}, which has no expected value on every row"
            columns[param] = values
        golds: dict[str, list[Any]] = {}
        for f in fields:
            values = [r.get(f) if r else None for r in exp_rows]
            values += [None] * (n - len(values))
            if not partial and any(v is None for v in values):
                return f"{node.id}.{f} has no expected value on every row"
            golds[f] = values
        known = [
            i
            for i in range(n)
            if all(c[i] is not None for c in columns.values())
            and all(g[i] is not None for g in golds.values())
        ]
        if partial and len(known) < min(2, n):
            return (
                f"{node.id}: only {len(known)} of {n} training rows have expected values for "
                f"all of {', '.join(node.inputs)} and {', '.join(fields)} (2 needed to verify)"
            )
        inputs = {
            p: inputs[p] if p in inputs else infer_type([columns[p][i] for i in known])
            for p in node.inputs
        }
        outputs = {
            f: _schema_labels(node, f) or infer_type([v[i] for i in known])
            for f, v in golds.items()
        }
        # the node's own prompt is the step's specification (the rule it applies, what each
        # of its labels means): the teacher's code for the step must follow it too
        step = f"the step {node.id}: {node.description}. " if node.description else ""
        step = f"{step or f'the step {node.id}. '}The step's instructions: {node.prompt.strip()}"
        sub = TaskSpec(
            description=f"{task.description} ({step})".strip(),
            inputs=inputs,
            outputs=outputs,
        )
        rows = [
            {**{p: columns[p][i] for p in inputs}, **{f: golds[f][i] for f in fields}}
            for i in known
        ]
        return sub, rows, default_metric(sub)

    async def programs(
        self, target: OffloadTarget, ctx: EditContext
    ) -> tuple[list[ProgramLike], str]:
        key = (target.node.id, target.fields)
        if key in self._cache:
            return list(self._cache[key]), "" if self._cache[key] else "no candidate (cached)"
        sub = self._subtask(ctx.plan, target, ctx.expected)
        if isinstance(sub, str):
            self._cache[key] = []
            return [], sub
        task, rows, metric = sub
        loop = self.loop
        if task is loop.task:
            solutions = [[RowSolution.from_dict(d) for d in per] for per in self.row_solutions]
        else:
            solutions = await solve_rows(
                loop.teacher,
                loop.sandbox,
                task,
                rows,
                metric,
                samples=loop.settings.program_samples,
                seed=ctx.seed,
                temperature=loop.settings.candidate_temperature,
                events=loop.events,
            )
        found = await program_candidates(
            loop.teacher,
            loop.sandbox,
            task,
            rows,
            metric,
            solutions,
            samples=loop.settings.offload_candidates,
            seed=ctx.seed,
            events=loop.events,
        )
        for program in found:
            self._count(program.origin, max(1, program.searched))
        self._cache[key] = list(found)
        note = (
            ""
            if found
            else (
                f"no program verified for {target.node.id} by any source "
                f"({sum(1 for r in solutions if r)}/{len(rows)} rows had a verified solution)"
            )
        )
        return list(found), note

    async def parsers(
        self, program: ProgramLike, fields: Sequence[str], ctx: EditContext
    ) -> list[ParserLike]:
        """Deterministic readers first (no tokens); the teacher's parsers only when the
        readers do not get every field (then a readers' parser of the other fields last).

        The readers are tried on every extracted parameter, not only on the erring
        ``fields``: they cost no tokens, and moving only the erring fields leaves the student
        a shorter schema that it fills from the wrong end of the text (measured on GSM duck
        eggs: readers for 2 of 4 fields, the student then copied the first numbers into the
        other two, loss 0.33 -> 1.0). The teacher is asked for ``fields`` only."""
        if not isinstance(program, Program):
            return []
        loop = self.loop
        wanted = list(dict.fromkeys([*fields, *program.extracted]))
        readers = await reader_candidates(
            loop.sandbox,
            loop.task,
            loop.rows,
            program,
            wanted,
            events=loop.events,
            iteration=loop.teacher.iteration,
        )
        self._count("reader", readers.searched)
        complete = [p for p in readers.parsers if set(fields) <= set(p.fields)]
        if complete or not fields:  # no erring field: readers only, no teacher call
            return sorted(complete, key=lambda p: -len(p.fields))
        found = await parser_candidates(
            loop.teacher,
            loop.sandbox,
            loop.task,
            loop.rows,
            program,
            list(fields),
            samples=loop.settings.offload_candidates,
            seed=ctx.seed,
            events=loop.events,
        )
        for parser in found:
            self._count("parser", max(1, parser.searched))
        return [*found, *readers.parsers]


def _schema_labels(node: LlmNode, name: str) -> FieldType | None:
    """``enum[...]`` when the node's output schema lists the labels of field ``name``."""
    props = (node.output_schema or {}).get("properties", {})
    sub = props.get(name) if isinstance(props, dict) else None
    labels = sub.get("enum") if isinstance(sub, dict) else None
    if isinstance(labels, list) and len(labels) >= 2 and all(isinstance(v, str) for v in labels):
        return FieldType(kind="enum", labels=tuple(labels))
    return None


def _with_step_names(task: TaskSpec, plan: Plan) -> TaskSpec:
    """The task, its description asking to name intermediate variables after the fields of
    the plan's intermediate LLM nodes (their values become those nodes' expected values).

    A workflow's steps also bring their instructions (each LLM node's prompt, placeholders
    shown as ``<name>``): a user's plan states its rules there (a refund rule, what each
    label means), and the plan's description need not repeat them."""
    final = {parse_ref(r).source for r in plan.outputs.values()}
    names: list[str] = []
    for node in plan.nodes:
        if isinstance(node, LlmNode) and node.id not in final:
            names.extend(f for f in node.fields() if f not in names and f not in task.outputs)
    if not names:
        return task
    steps = [
        f"{node.id}: " + " ".join(_PLACEHOLDER.sub(r"<\1>", node.prompt).split())
        for node in plan.nodes
        if isinstance(node, LlmNode)
    ]
    hint = (
        " Work in steps and keep each step's result in a variable with exactly this name: "
        + ", ".join(names)
        + ". The steps' instructions: "
        + " | ".join(steps)
    )
    return task.model_copy(update={"description": task.description.rstrip() + hint})


_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)[^}]*\}\}")


def _single_output(
    task: TaskSpec, solved: Sequence[Sequence[RowSolution]]
) -> list[Solution | None]:
    """Solutions in the single-number form the solve-then-lift path reads."""
    if len(task.outputs) != 1:
        return [None] * len(solved)
    name = next(iter(task.outputs))
    out: list[Solution | None] = []
    for i, per_row in enumerate(solved):
        first = per_row[0] if per_row else None
        answer = first.outputs.get(name) if first is not None else None
        if first is None or to_number(answer) is None:
            out.append(None)
            continue
        numeric = {
            k: float(v)
            for k, v in first.intermediates.items()
            if not isinstance(v, (str, bool)) and to_number(v) is not None
        }
        out.append(Solution(i, first.code, answer, numeric))
    return out
