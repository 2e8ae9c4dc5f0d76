"""The operator protocol and registry: the one place where an edit direction is added.

An operator has a ``name`` (the direction placement proposes and the critique may name), an
applicability check (``check(plan, node_id) -> None | reason``, cheap and without model calls)
and ``propose(ctx) -> Candidate | EditFailure`` that builds one validated edit. To add an
operator, implement :class:`Operator` and register it::

    registry = default_registry()
    registry.register(MyOperator())
    await compile_async(..., operators=registry)

Placement (:mod:`sgde.optimize.placement`) ranks directions from statistics; the loop takes
the first proposal whose operator is registered and applicable.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from sgde.optimize.events import EventSink
from sgde.optimize.operators.base import Candidate, EditFailure
from sgde.optimize.operators.consensus import consensus_edit, grounded_fields
from sgde.optimize.operators.offload_ops import OffloadOperator, ParseOperator
from sgde.optimize.operators.rewrite_prompt import rewrite_prompt
from sgde.optimize.operators.topology import change_topology, split_per_field
from sgde.optimize.records import EditRecord, history_lines
from sgde.optimize.settings import CompileSettings
from sgde.optimize.supervision import NodeStats
from sgde.optimize.teacher import Teacher
from sgde.plan.model import ConsensusNode, LlmNode, Plan
from sgde.runtime.calls import CodeRunner
from sgde.task import Metric, TaskSpec

__all__ = ["EditContext", "Operator", "OperatorRegistry", "default_registry"]


@dataclass
class EditContext:
    """Everything an operator may read to build one edit (it must not mutate any of it).

    Attributes:
        plan: The plan to edit.
        node_id: The node placement chose.
        reason: The statistic that triggered the proposal.
        teacher: The structured teacher.
        sandbox: Where all teacher code runs.
        rows: The training rows.
        task: The typed task.
        metric: The task metric.
        settings: Compile settings.
        seed: Seed for this edit's teacher sampling.
        expected: Expected per-node values per row (supervision + lifted parameters).
        stats: Per-node statistics of the plan's last forward pass.
        failures: Failing rows of the last forward pass (for prompts).
        diagnosis: The critique's diagnosis (or the statistic when it failed).
        history: Typed records of earlier edits.
        supervision: Verified teacher material shared by the operators (row solutions,
            program candidates), owned by the loop.
        events: Progress listener.
        readers_only: The loop's last step at zero training loss: parse offers only sgde's
            deterministic readers (no teacher call), for extraction fields that do not err.
    """

    plan: Plan
    node_id: str
    reason: str
    teacher: Teacher
    sandbox: CodeRunner
    rows: Sequence[Mapping[str, Any]]
    task: TaskSpec
    metric: Metric
    settings: CompileSettings
    seed: int
    expected: Mapping[str, Sequence[Mapping[str, Any] | None]] = field(default_factory=dict)
    stats: Mapping[str, NodeStats] = field(default_factory=dict)
    failures: Sequence[dict[str, Any]] = ()
    diagnosis: str = ""
    history: Sequence[EditRecord] = ()
    supervision: Any = None
    events: EventSink | None = None
    readers_only: bool = False


@runtime_checkable
class Operator(Protocol):
    """One edit direction."""

    name: str

    def check(self, plan: Plan, node_id: str) -> str | None:
        """``None`` when the operator can edit ``node_id`` of ``plan``, else why not."""
        ...

    async def propose(self, ctx: EditContext) -> Candidate | EditFailure:
        """Build one validated edit (or say why there is none)."""
        ...


def _llm_or_vote(plan: Plan, node_id: str) -> str | None:
    try:
        node = plan.node(node_id)
    except KeyError:
        return f"the plan has no node {node_id!r}"
    if not isinstance(node, (LlmNode, ConsensusNode)):
        return f"{node_id!r} is not an LLM node"
    return None


class _Consensus:
    name = "consensus"

    def check(self, plan: Plan, node_id: str) -> str | None:
        problem = _llm_or_vote(plan, node_id)
        if problem is None and node_id in plan.wrapped_ids():
            return f"{node_id!r} is already wrapped"
        if problem is None and isinstance(plan.node(node_id), ConsensusNode):
            return f"{node_id!r} is a vote already"
        return problem

    async def propose(self, ctx: EditContext) -> Candidate | EditFailure:
        st = ctx.stats.get(ctx.node_id)
        return consensus_edit(
            ctx.plan,
            ctx.node_id,
            n=ctx.settings.consensus_n,
            temperature=ctx.settings.consensus_temperature,
            repeats_agree=st is None or st.disagreement < ctx.settings.consensus_min_disagreement,
            grounded=grounded_fields(ctx.plan, ctx.node_id, ctx.rows, ctx.expected),
        )


class _Topology:
    name = "topology"

    def check(self, plan: Plan, node_id: str) -> str | None:
        return _llm_or_vote(plan, node_id)

    async def propose(self, ctx: EditContext) -> Candidate | EditFailure:
        return change_topology(ctx.plan, ctx.node_id)


class _SplitFields:
    name = "split_fields"

    def check(self, plan: Plan, node_id: str) -> str | None:
        problem = _llm_or_vote(plan, node_id)
        if problem is not None:
            return problem
        node = plan.node(node_id)
        if not isinstance(node, LlmNode) or len(node.fields()) < 2:
            return f"{node_id!r} has fewer than two fields"
        if node_id in plan.wrapped_ids():
            return f"{node_id!r} is wrapped by a vote"
        return None

    async def propose(self, ctx: EditContext) -> Candidate | EditFailure:
        return split_per_field(ctx.plan, ctx.node_id)


class _RewritePrompt:
    name = "rewrite_prompt"

    def check(self, plan: Plan, node_id: str) -> str | None:
        return _llm_or_vote(plan, node_id)

    async def propose(self, ctx: EditContext) -> Candidate | EditFailure:
        earlier = history_lines(ctx.history, direction="rewrite_prompt")
        return await rewrite_prompt(
            ctx.plan,
            ctx.node_id,
            teacher=ctx.teacher,
            failures=ctx.failures,
            diagnosis=ctx.diagnosis,
            history=earlier[-3:],
            temperature=0.0 if not earlier else ctx.settings.candidate_temperature,
            seed=ctx.seed,
            candidates=ctx.settings.rewrite_candidates,
        )


class OperatorRegistry:
    """Operators by name, in registration order."""

    def __init__(self, operators: Sequence[Operator] = ()) -> None:
        self._ops: dict[str, Operator] = {}
        for op in operators:
            self.register(op)

    def register(self, operator: Operator) -> None:
        """Add (or replace) the operator named ``operator.name``."""
        if not isinstance(operator, Operator):
            raise TypeError(f"{operator!r} does not implement the Operator protocol")
        self._ops[operator.name] = operator

    def get(self, name: str) -> Operator | None:
        return self._ops.get(name)

    def names(self) -> tuple[str, ...]:
        return tuple(self._ops)

    def __contains__(self, name: object) -> bool:
        return name in self._ops

    def __iter__(self) -> Iterator[Operator]:
        return iter(self._ops.values())


def default_registry(extra: Sequence[Operator] = ()) -> OperatorRegistry:
    """The built-in operators (offload, consensus, split_fields, topology, rewrite_prompt)."""
    return OperatorRegistry(
        [
            OffloadOperator(),
            ParseOperator(),
            _Consensus(),
            _SplitFields(),
            _Topology(),
            _RewritePrompt(),
            *extra,
        ]
    )
