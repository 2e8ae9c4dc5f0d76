"""Consensus wrap: ask a variance-limited node several times and vote per field.

Two kinds of members, both voted on deterministically (:mod:`sgde.runtime.consensus`):

* **temperature** — the node's own prompt asked ``n`` times: once greedy (the first member,
  so it wins a tie) and ``n - 1`` samples at a sampling temperature (:func:`sampled_members`).
  They help a node whose answers vary from sample to sample around a right majority; for a
  small model that errs the same way every time they mostly repeat its bias. The greedy
  member keeps the vote from drifting off the model's best answer on sampling noise alone
  (a one-token label's samples can only estimate it).
* **prompts** — one greedy member per prompt variant, derived from the node without a
  teacher call (:func:`prompt_members`): the node as it is, its labels listed in reverse and
  in order (a small model leans towards a label by where it is named), the instruction moved
  into the user turn, the input before the instruction. Their errors are less alike, so the
  vote can outvote a bias.

:func:`consensus_edit` builds both as variants of one edit; the loop scores each on the
training rows and keeps the one whose node errs least (see
:func:`~sgde.optimize.accept.choose_variant`). On a tie the node's statistics decide: when
its repeats agree (disagreement below ``consensus_min_disagreement``, or a single repeat) its
errors are systematic, so prompt members come first; when they disagree, temperature first.

Either vote is **grounded** on the fields the node copies (:func:`grounded_fields`: on every
training row with an expected value, that value is written in the node's text inputs): a
sample's copy that is not in the text does not count (:mod:`sgde.runtime.consensus`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sgde.optimize.operators.base import (
    Candidate,
    EditFailure,
    Variant,
    rewire,
    unique_id,
    validated,
)
from sgde.plan.graph import node_fields
from sgde.plan.model import ConsensusMember, ConsensusNode, LlmNode, Plan
from sgde.plan.refs import parse_ref
from sgde.runtime.consensus import occurs_in

__all__ = [
    "consensus_edit",
    "grounded_fields",
    "prompt_members",
    "sampled_members",
    "wrap_consensus",
]


def wrap_consensus(
    plan: Plan,
    node_id: str,
    *,
    n: int,
    temperature: float,
    members: Sequence[ConsensusMember] = (),
    grounded: Sequence[str] = (),
) -> Candidate | EditFailure:
    """Wrap LLM node ``node_id`` in a :class:`ConsensusNode` (``<id>_vote``).

    Every reference to ``node_id.<field>`` is rewired to the vote node. Deterministic: no
    teacher call. The accept step decides whether voting helps (it can hurt a student whose
    samples are mostly wrong).

    Args:
        plan: The plan.
        node_id: The LLM node to wrap.
        n: Samples (ignored with ``members``: one sample per member).
        temperature: The fan-out's sampling temperature (members: their temperature).
        members: Prompt-variant members (empty: ``n`` samples of the node's own prompt).
        grounded: Fields whose votes count only where the value occurs in the node's text
            inputs (:func:`grounded_fields`).
    """
    try:
        node = plan.node(node_id)
    except KeyError:
        return EditFailure("consensus", node_id, f"the plan has no node {node_id!r}")
    if not isinstance(node, LlmNode):
        return EditFailure("consensus", node_id, f"{node_id!r} is not an LLM node")
    if node_id in plan.wrapped_ids():
        return EditFailure("consensus", node_id, f"{node_id!r} is already wrapped")
    vote_id = unique_id(plan, f"{node_id}_vote")
    if members:
        n = len(members)
        sampled = all(m.system is None and m.prompt is None for m in members)
        kind = "samples (the first greedy)" if sampled else "prompt variants"
        what = f"majority vote over {n} {kind} of {node_id}"
    else:
        what = f"majority vote over {n} samples of {node_id}"
    vote = ConsensusNode(
        id=vote_id,
        of=node_id,
        n=n,
        temperature=temperature,
        members=list(members),
        grounded=list(grounded),
        description=what,
    )
    nodes = list(plan.nodes)
    nodes.insert(nodes.index(node) + 1, vote)
    edited = rewire(
        plan, lambda src, fld: f"{vote_id}.{fld}" if src == node_id else None, nodes=nodes
    )
    checked, problems = validated(edited)
    if checked is None:
        return EditFailure("consensus", node_id, "; ".join(problems))
    details: dict[str, Any] = {"vote_id": vote_id, "n": n, "temperature": temperature}
    if grounded:
        details["grounded"] = list(grounded)
    if members:
        details["members"] = [m.name for m in members]
        summary = f"wrap {node_id} in a vote of {n} {kind} ({vote_id})"
    else:
        summary = f"wrap {node_id} in a {n}-sample vote ({vote_id})"
    return Candidate(checked, "consensus", node_id, summary, details=details)


def grounded_fields(
    plan: Plan,
    node_id: str,
    rows: Sequence[Mapping[str, Any]],
    expected: Mapping[str, Sequence[Mapping[str, Any] | None]],
) -> list[str]:
    """The output fields of LLM node ``node_id`` that copy its text inputs.

    A field is grounded when, on every training row where its expected value is known (at
    least two rows), that value is written in the node's text inputs
    (:func:`~sgde.runtime.consensus.occurs_in`). Only a node whose inputs are all the plan's
    inputs is judged (what another node passes it is not known here): ``[]`` otherwise.
    """
    node = plan.node(node_id)
    if not isinstance(node, LlmNode):
        return []
    refs = [parse_ref(ref) for ref in node.inputs.values()]
    if not refs or not all(r.is_input for r in refs):
        return []
    per_row = expected.get(node_id) or []
    grounded: list[str] = []
    for name in node_fields(plan, node_id) or []:
        known = [
            (row, want[name])
            for row, want in zip(rows, per_row, strict=False)
            if want is not None and want.get(name) is not None
        ]
        texts = [[str(row[r.field]) for r in refs if isinstance(row.get(r.field), str)]
                 for row, _ in known]  # fmt: skip
        if len(known) >= min(2, len(rows)) and all(
            occurs_in(value, t) for (_, value), t in zip(known, texts, strict=True)
        ):
            grounded.append(name)
    return grounded


def _labels(node: LlmNode) -> list[tuple[str, list[str]]]:
    """``(field, labels)`` for each output field restricted to two or more string labels."""
    props = (node.output_schema or {}).get("properties", {})
    out: list[tuple[str, list[str]]] = []
    for name, sub in props.items() if isinstance(props, dict) else []:
        enum = sub.get("enum") if isinstance(sub, dict) else None
        if isinstance(enum, list) and len(enum) >= 2 and all(isinstance(v, str) for v in enum):
            out.append((name, list(enum)))
    return out


def _with_line(system: str, line: str) -> str:
    return f"{system.rstrip()}\n\n{line}" if system.strip() else line


def sampled_members(n: int) -> list[ConsensusMember]:
    """``n`` members asking the node's own prompt: ``greedy`` (temperature 0) first, then
    ``sample-1`` … at the consensus node's temperature."""
    return [ConsensusMember(name="greedy", temperature=0.0)] + [
        ConsensusMember(name=f"sample-{k}") for k in range(1, n)
    ]


def prompt_members(node: LlmNode, k: int) -> list[ConsensusMember]:
    """Up to ``k`` prompt variants of ``node``, derived without a model call.

    In order: the node as it is (``as-is``); its labels named in reverse and in their own
    order (``labels-reversed``, ``labels-in-order``; only when an output field is a label
    set); its system prompt moved into the user turn before the prompt (``in-prompt``) and
    after it (``input-first``; only when it has a system prompt). Fewer than two means no
    vote of prompt variants is possible.
    """
    members = [ConsensusMember(name="as-is")]
    labels = _labels(node)
    if labels:
        for name, order in (("labels-reversed", True), ("labels-in-order", False)):
            line = " ".join(
                f"Answer `{field}` with one of: "
                + ", ".join(reversed(values) if order else values)
                + "."
                for field, values in labels
            )
            members.append(ConsensusMember(name=name, system=_with_line(node.system, line)))
    if node.system.strip():
        members.append(
            ConsensusMember(
                name="in-prompt", system="", prompt=f"{node.system.rstrip()}\n\n{node.prompt}"
            )
        )
        members.append(
            ConsensusMember(
                name="input-first",
                system="",
                prompt=f"{node.prompt.rstrip()}\n\n{node.system}",
            )
        )
    return members[:k]


def consensus_edit(
    plan: Plan,
    node_id: str,
    *,
    n: int,
    temperature: float,
    repeats_agree: bool,
    grounded: Sequence[str] = (),
) -> Candidate | EditFailure:
    """The consensus edit of ``node_id`` in its two member kinds, as scored variants.

    Args:
        plan: The plan.
        node_id: The LLM node to wrap.
        n: Samples of the temperature vote, and the most prompt variants.
        temperature: Temperature of the temperature vote (prompt variants are greedy).
        repeats_agree: The node's statistics show no sampling variance (its repeats agree
            on the training rows): prompt variants come first, and win a tie.
        grounded: Fields both votes ground in the node's text inputs.

    Returns:
        A candidate with ``variants`` (``prompts`` and ``temperature``) when the node has at
        least two prompt variants, else the temperature vote alone.
    """
    sampled = wrap_consensus(
        plan,
        node_id,
        n=n,
        temperature=temperature,
        members=sampled_members(n),
        grounded=grounded,
    )
    if isinstance(sampled, EditFailure):
        return sampled
    node = plan.node(node_id)
    assert isinstance(node, LlmNode)  # wrap_consensus checked it
    members = prompt_members(node, n)
    if len(members) < 2:
        return sampled
    varied = wrap_consensus(plan, node_id, n=n, temperature=0.0, members=members, grounded=grounded)
    if isinstance(varied, EditFailure):
        return sampled
    # Equal sizes: a tie on node error goes to the earlier variant, so the order below (by
    # the node's agreement statistics) is the tie-break.
    ordered = [("prompts", varied), ("temperature", sampled)]
    if not repeats_agree:
        ordered.reverse()
    first = ordered[0][1]
    return Candidate(
        first.plan,
        "consensus",
        node_id,
        f"wrap {node_id} in a vote ({first.details['vote_id']})",
        details={
            "vote_id": first.details["vote_id"],
            "variant_kind": "members",
            "kinds": {name: c.details for name, c in ordered},
        },
        proposals=2,
        variants=tuple(Variant(name, c.plan, node_id, 0) for name, c in ordered),
    )
