"""The offload and parse operators (registry entries) over a source of verified programs.

* ``offload`` replaces an LLM node by verified code: program candidates (whole-task code,
  typed solve-then-lift, enumerative search — :class:`ProgramSource`) become
  ``extract → compute`` nodes (:mod:`sgde.optimize.operators.program_nodes`), the
  extraction in a few prompt variants the loop chooses among by the student's measured
  error (:class:`~sgde.optimize.operators.base.Variant`); when no
  candidate builds, the single-number solve-then-lift path
  (:func:`sgde.optimize.operators.offload.offload`) is tried with the supervision's
  solutions.
* ``parse`` moves the fields an extraction keeps getting wrong (after a prompt rewrite was
  tried) into teacher-written parsing code verified on the training rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from sgde.optimize.operators.base import Candidate, EditFailure, Variant
from sgde.optimize.operators.offload import OffloadTarget, offload, offload_target
from sgde.optimize.operators.program_nodes import (
    ParserLike,
    ProgramLike,
    build_program_plan,
    prompt_size,
    replace_fields,
)
from sgde.optimize.supervision import Solution
from sgde.plan.model import ConsensusNode, LlmNode, Plan
from sgde.runtime.numbers import to_number

if TYPE_CHECKING:
    from sgde.optimize.operators.registry import EditContext

__all__ = ["OffloadOperator", "ParseOperator", "ProgramSource"]


class ProgramSource(Protocol):
    """Verified material the offload and parse operators draw on (the loop provides it)."""

    @property
    def solutions(self) -> Sequence[Solution | None]:
        """Single-output verified solutions per row (the solve-then-lift path)."""
        ...

    async def programs(
        self, target: OffloadTarget, ctx: EditContext
    ) -> tuple[list[ProgramLike], str]:
        """Program candidates for ``target``'s used fields, best first, and a note on why
        there are none (``""`` when there are)."""
        ...

    def program_of(self, node_id: str) -> ProgramLike | None:
        """The program whose extraction node ``node_id`` is (``None``: not an extraction)."""
        ...

    def remember(self, node_id: str, program: ProgramLike) -> None:
        """Record that extraction node ``node_id`` feeds ``program``."""
        ...

    async def parsers(
        self, program: ProgramLike, fields: Sequence[str], ctx: EditContext
    ) -> list[ParserLike]:
        """Verified parsers reading ``fields`` of ``program`` from the task inputs."""
        ...


def _size(plan: Plan, node_id: str) -> int:
    node = plan.node(node_id)
    return prompt_size(node) if isinstance(node, LlmNode) else 0


def _golds(target: OffloadTarget, expected: Mapping[str, Any]) -> list[Any] | None:
    rows = expected.get(target.node.id)
    if not rows or any(r is None or target.output_field not in r for r in rows):
        return None
    return [r[target.output_field] for r in rows]


class OffloadOperator:
    """Replace an LLM node by verified code (see the module docstring)."""

    name = "offload"

    def check(self, plan: Plan, node_id: str) -> str | None:
        target = offload_target(plan, node_id)
        return target if isinstance(target, str) else None

    async def propose(self, ctx: EditContext) -> Candidate | EditFailure:
        target = offload_target(ctx.plan, ctx.node_id)
        if isinstance(target, str):
            return EditFailure("offload", ctx.node_id, target)
        source: ProgramSource | None = ctx.supervision
        log: list[str] = []
        searched = 0
        if source is not None:
            programs, note = await source.programs(target, ctx)
            if note:
                log.append(note)
            for k, program in enumerate(programs, start=1):
                searched += 1
                if not target.text_inputs and set(program.params) - set(program.raw_inputs):
                    # a node reading only upstream fields: its code must take exactly those
                    # fields (an extraction would have no text to read them from)
                    log.append(f"{program.origin} program {k}: reads parameters no input gives")
                    continue
                built, problems = build_program_plan(
                    ctx.plan, target.node, target.vote_id, target.fields, program
                )
                if built is None:
                    log.append(f"{program.origin} program {k}: plan invalid: {'; '.join(problems)}")
                    continue
                if built.extract_id is not None:
                    source.remember(built.extract_id, program)
                how = []
                inputs = [r for r in built.raw if r not in program.answers]
                if inputs:
                    how.append(f"inputs {', '.join(inputs)}")
                if any(a in built.raw for a in program.answers):
                    kept = ", ".join(program.answers[a] for a in program.answers if a in built.raw)
                    how.append(f"the student's own {kept} where it reads nothing")
                if built.extracted:
                    how.append(f"student extracts {', '.join(built.extracted)}")
                no_student = " — no student call left" if built.student_free else ""
                variants: tuple[Variant, ...] = ()
                if built.extract_id is not None and len(built.variants) > 1:
                    variants = tuple(
                        Variant(name, plan, built.extract_id, _size(plan, built.extract_id))
                        for name, plan in built.variants
                    )
                return Candidate(
                    built.plan,
                    "offload",
                    target.node.id,
                    f"offload {target.node.id} ({', '.join(target.fields)}) to a "
                    f"{program.origin} program ({'; '.join(how) or 'no parameters'}){no_student}",
                    details={
                        "code": program.code,
                        "origin": program.origin,
                        "params": {p: str(t) for p, t in program.params.items()},
                        "raw_inputs": dict(built.raw),
                        "extracted": built.extracted,
                        "verified_rows": program.verified_rows,
                        "searched": program.searched,
                        "student_free": built.student_free,
                        "log": log,
                    },
                    lifted=built.lifted,
                    proposals=searched,
                    variants=variants,
                )
        golds = _golds(target, ctx.expected)
        legacy = [s for s in (source.solutions if source is not None else []) if s is not None]
        if (
            len(target.fields) == 1
            and target.text_inputs
            and legacy
            and golds is not None
            and all(to_number(g) is not None for g in golds)
        ):
            edit = await offload(
                ctx.plan,
                ctx.node_id,
                teacher=ctx.teacher,
                sandbox=ctx.sandbox,
                rows=ctx.rows,
                golds=golds,
                solutions=source.solutions if source is not None else [],
                settings=ctx.settings,
                seed=ctx.seed,
            )
            if isinstance(edit, Candidate) or not log:
                return edit
            log.append(edit.reason)
            searched += edit.proposals
        return EditFailure(
            "offload",
            target.node.id,
            "no verified program for "
            f"{target.node.id} ({', '.join(target.fields)}): "
            + (" | ".join(log[-4:]) or "no source"),
            details={"log": log},
            proposals=searched,
        )


class ParseOperator:
    """Move the fields an extraction keeps getting wrong into verified parsing code."""

    name = "parse"

    def check(self, plan: Plan, node_id: str) -> str | None:
        try:
            node = plan.node(node_id)
        except KeyError:
            return f"the plan has no node {node_id!r}"
        if isinstance(node, ConsensusNode):
            node = plan.node(node.of)
        if not isinstance(node, LlmNode) or node.output_schema is None:
            return f"{node_id!r} is not an extraction node"
        return None

    async def propose(self, ctx: EditContext) -> Candidate | EditFailure:
        node_id = ctx.node_id
        node = ctx.plan.node(node_id)
        if isinstance(node, ConsensusNode):
            node_id = node.of
        source: ProgramSource | None = ctx.supervision
        program = source.program_of(node_id) if source is not None else None
        if source is None or program is None:
            return EditFailure("parse", node_id, f"{node_id!r} was not made by an offload")
        st = ctx.stats.get(node_id)
        fields = [
            f
            for f, fs in (st.fields.items() if st is not None else [])
            if fs.error_rate is not None and fs.error_rate > ctx.settings.parse_min_error
        ]
        if not fields and not ctx.readers_only:
            return EditFailure("parse", node_id, "no field of the extraction is wrong often enough")
        # with no erring field (``readers_only``: the loop's last step at zero training loss),
        # only sgde's readers are offered: they cost no tokens, are verified on perturbed rows
        parsers = await source.parsers(program, [] if ctx.readers_only else fields, ctx)
        searched = len(parsers)
        for parser in parsers:
            edited, _problems, parse_id = replace_fields(ctx.plan, node_id, parser)
            if edited is None:
                continue
            moved = [f for f in parser.fields if f in fields or f in program.params]
            lifted = {
                parse_id: [
                    {k: v[k] for k in moved if k in v} if v is not None else None
                    for v in program.values
                ]
            }
            kept = ctx.expected.get(node_id)
            if kept and parse_id and any(f not in moved for r in kept if r for f in r):
                # the extraction keeps its other fields: its supervision narrows to them
                lifted[node_id] = [
                    {k: x for k, x in r.items() if k not in moved} if r else None for r in kept
                ]
            return Candidate(
                edited,
                "parse",
                node_id,
                f"parse {', '.join(moved)} with code ({parse_id}) instead of {node_id}",
                details={
                    "code": parser.code,
                    "fields": moved,
                    "verified_rows": parser.verified_rows,
                },
                lifted=lifted,
                proposals=max(1, searched),
            )
        return EditFailure(
            "parse",
            node_id,
            f"no parser for {', '.join(fields) or 'any field'} verified on the training rows",
            proposals=searched,
        )
