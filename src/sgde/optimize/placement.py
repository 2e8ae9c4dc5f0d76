"""Trace-driven placement: which node to change, and in which direction.

The decision rests on statistics sgde computes (:mod:`sgde.optimize.supervision`); the
teacher's critique only explains it (measured: the 1.5B local teacher, Qwen2.5-Coder-1.5B,
names the right node in 3 of 10 failing traces). Rules, per erring LLM node, most erring
first (ties: upstream first):

1. **offload** — error rate ≥ ``offload_min_error`` and the node's output is *computable*
   (every row has an expected value for it); with a lower error, offload is still proposed
   after consensus and split_fields (verified code may fix the remaining rows).
2. **parse** — an extraction node (made by an offload) wrong on a field more often than
   ``parse_min_error`` (default: ever): verified parsing code may read that field instead
   (sgde's deterministic readers cost no tokens, the teacher writes parsers when they do not
   fit).
   Ranked before an offload of the extraction node itself, so that it is reached within a
   few iterations.
3. **consensus** — a sampled node whose repeats disagree on ≥ ``consensus_min_disagreement``
   of the rows while the per-row majority is right on ≥ ``consensus_min_mode_accuracy`` of
   them; or a greedy node (temperature 0: its repeats cannot disagree) that is right on most
   but not all pairs (0 < error ≤ ``consensus_max_greedy_error``): votes over sampled
   answers fix the rows where the greedy answer is the unlucky one.
4. **split_fields** — an erring node with several fields, some right and some wrong: one
   call per field.
5. **topology** — split a node with ≥ ``split_min_fields`` output fields; unwrap a consensus
   node whose majority is mostly wrong (voting hurts when most samples are wrong).
6. **rewrite_prompt** — otherwise.

All applicable directions are returned, ranked, so the compiler can try the next one when an
edit is rejected.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Literal

from sgde.optimize.settings import CompileSettings
from sgde.optimize.supervision import NodeStats
from sgde.plan import topo_order
from sgde.plan.model import ConsensusNode, LlmNode, Plan

__all__ = ["DIRECTIONS", "Direction", "Proposal", "rank_proposals"]

Direction = Literal["rewrite_prompt", "offload", "parse", "consensus", "split_fields", "topology"]
DIRECTIONS: tuple[Direction, ...] = (
    "rewrite_prompt",
    "offload",
    "parse",
    "consensus",
    "split_fields",
    "topology",
)


@dataclass(frozen=True)
class Proposal:
    """One ranked placement decision with the statistic that triggered it."""

    node_id: str
    direction: Direction
    reason: str

    def key(self) -> str:
        return f"{self.direction}:{self.node_id}"


def rank_proposals(
    plan: Plan,
    stats: Mapping[str, NodeStats],
    *,
    settings: CompileSettings,
    computable: set[str],
    extractions: Set[str] = frozenset(),
    rewritten: Set[str] = frozenset(),
) -> list[Proposal]:
    """Ranked proposals for the current plan (empty when no LLM node can be changed).

    Args:
        plan: The current plan.
        stats: Per-node statistics of its last forward pass.
        settings: Thresholds.
        computable: Ids of LLM nodes whose output can be offloaded to verified code.
        extractions: Ids of extraction nodes made by an offload (parse candidates).
        rewritten: Ids of nodes whose prompt rewrite was already tried.
    """
    order = {nid: i for i, nid in enumerate(topo_order(plan))}
    wrapped = {n.of: n.id for n in plan.nodes if isinstance(n, ConsensusNode)}
    llm = [n for n in plan.nodes if isinstance(n, LlmNode)]

    def badness(node: LlmNode) -> float:
        st = stats.get(node.id)
        if st is None:
            return 0.0
        err = st.error_rate if st.error_rate is not None else 0.0
        return max(err, st.failures)

    ranked = sorted(llm, key=lambda n: (-badness(n), order.get(n.id, 0)))
    out: list[Proposal] = []
    for node in ranked:
        st = stats.get(node.id)
        if st is None:
            continue
        err = st.error_rate
        bad = badness(node)
        if bad <= 0 and st.disagreement <= 0:
            continue
        worst = max(
            (f.error_rate for f in st.fields.values() if f.error_rate is not None), default=0.0
        )
        if node.id in extractions and worst > settings.parse_min_error:
            again = " after a prompt rewrite" if node.id in rewritten else ""
            out.append(
                Proposal(
                    node.id,
                    "parse",
                    f"a field is wrong on {worst:.0%}{again}: read it with verified code",
                )
            )
        if node.id in computable and err is not None and err >= settings.offload_min_error:
            out.append(
                Proposal(
                    node.id,
                    "offload",
                    f"error {err:.0%} ≥ {settings.offload_min_error:.0%} on a computable output",
                )
            )
        mode = st.mode_accuracy
        if (
            node.id not in wrapped
            and st.disagreement >= settings.consensus_min_disagreement
            and mode is not None
            and mode >= settings.consensus_min_mode_accuracy
        ):
            out.append(
                Proposal(
                    node.id,
                    "consensus",
                    f"disagreement {st.disagreement:.0%} with the majority right "
                    f"on {mode:.0%} of rows",
                )
            )
        elif (
            node.id not in wrapped and err is not None and 0.0 < err <= settings.consensus_max_error
        ):
            out.append(
                Proposal(
                    node.id,
                    "consensus",
                    f"answers right on {1 - err:.0%} of pairs: a majority of sampled answers "
                    "is right more often than one answer",
                )
            )
        right_fields = [f for f in st.fields.values() if f.error_rate == 0.0]
        wrong_fields = [f for f in st.fields.values() if f.error_rate]
        if node.id not in wrapped and right_fields and wrong_fields and st.n_fields >= 2:
            out.append(
                Proposal(
                    node.id,
                    "split_fields",
                    f"{len(wrong_fields)} of {st.n_fields} fields wrong: one call per field",
                )
            )
        if node.id in computable and err is not None and 0.0 < err < settings.offload_min_error:
            out.append(
                Proposal(
                    node.id,
                    "offload",
                    f"error {err:.0%} on a computable output: verified code may fix the rest",
                )
            )
        if node.id in wrapped and mode is not None and mode < 0.5:
            out.append(
                Proposal(
                    wrapped[node.id],
                    "topology",
                    f"the vote's majority is right on only {mode:.0%} of rows: "
                    "unwrap the consensus",
                )
            )
        if st.n_fields >= settings.split_min_fields and bad > 0:
            out.append(
                Proposal(
                    node.id, "topology", f"{st.n_fields} output fields with error {bad:.0%}: split"
                )
            )
        if bad > 0:
            out.append(
                Proposal(
                    node.id,
                    "rewrite_prompt",
                    f"error {bad:.0%}" if err is not None else f"node failures {st.failures:.0%}",
                )
            )
    if not out:
        # Loss without an attributable node: rewrite the nodes that feed the outputs.
        feeders = {ref.split(".", 1)[0] for ref in plan.outputs.values()}
        for node in sorted(llm, key=lambda n: order.get(n.id, 0), reverse=True):
            target = node.id
            if target in feeders or wrapped.get(target) in feeders:
                out.append(
                    Proposal(
                        target, "rewrite_prompt", "training loss with no supervised node at fault"
                    )
                )
    return out
