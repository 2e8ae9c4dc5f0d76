"""The accept rule of the loop (see ``docs/compiler.md``, step 8), and the choice among
the prompt variants of one edit."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sgde.optimize.evaluate import PlanEval
from sgde.optimize.operators.base import Candidate, Variant

__all__ = ["Decision", "choose_variant", "decide"]

_EPS = 1e-9


@dataclass(frozen=True)
class Decision:
    """Whether a candidate is kept, and why (one line for the report and history)."""

    accepted: bool
    why: str


def decide(current: PlanEval, candidate: PlanEval, edit: Candidate | None = None) -> Decision:
    """The accept rule: lower loss; or the same loss at a lower node-level error; or the same
    on both at fewer student tokens.

    An ``edit`` whose code fails some training rows (its ``verified_rows`` below the rows
    scored) is kept only on a lower loss: on a tie it trades the student's errors, which
    these rows estimate without bias, for the errors of code chosen because it fits these
    rows (measured: a review-label program verified on 2 of 3 rows, accepted on a tie for
    needing no student call, scored 55 % held out where the student scored 70–75 %)."""
    cn, un = candidate.node_loss, current.node_loss
    known = cn is not None and un is not None
    node = f", node-level error {cn:.3f} vs {un:.3f}" if known else ""
    rejected = (
        f"loss {candidate.loss:.3f} vs {current.loss:.3f}{node} at "
        f"{candidate.student_tokens} vs {current.student_tokens} student tokens"
    )
    if candidate.loss < current.loss - _EPS:
        return Decision(True, "loss improved")
    if abs(candidate.loss - current.loss) > _EPS:
        return Decision(False, rejected)
    verified = edit.details.get("verified_rows") if edit is not None else None
    rows = len(candidate.scores[0]) if candidate.scores else 0
    if isinstance(verified, int) and verified < rows:
        return Decision(
            False,
            f"{rejected}: its code fails {rows - verified} of {rows} training rows, so a tie "
            "keeps the student",
        )
    if cn is not None and un is not None and cn < un - _EPS:
        return Decision(
            True, f"same loss, node-level error {un:.3f} → {cn:.3f} (kept to be repaired)"
        )
    if (not known or abs((cn or 0.0) - (un or 0.0)) <= _EPS) and (
        candidate.student_tokens < current.student_tokens
    ):
        return Decision(
            True,
            f"same loss at fewer student tokens ({candidate.student_tokens} < "
            f"{current.student_tokens})",
        )
    return Decision(False, rejected)


def choose_variant(
    edit: Candidate, scored: Sequence[tuple[Variant, PlanEval, float | None]]
) -> tuple[Candidate, PlanEval]:
    """The version of ``edit`` to score against the current plan: the variant whose varied
    node has the lowest supervised error on the training rows (partial credit per field),
    ties to the lower end-to-end loss (it alone decides where the node has no expected
    values), then to the shorter prompt, then to the earlier variant. The returned candidate carries
    the choice and every variant's figures in ``details["variants"]`` and its summary."""

    def key(
        item: tuple[int, tuple[Variant, PlanEval, float | None]],
    ) -> tuple[float, float, int, int]:
        k, (variant, evaluation, error) = item
        node = math.inf if error is None else round(error, 9)
        return (node, round(evaluation.loss, 9), variant.size, k)

    _, (best, evaluation, error) = min(enumerate(scored), key=key)
    kind = {"members": "members", "rewrites": "rewrite"}.get(
        str(edit.details.get("variant_kind")), "extraction prompt"
    )
    table = {
        v.name: {"node_error": e, "loss": ev.loss, "prompt_chars": v.size} for v, ev, e in scored
    }
    others = ", ".join(
        f"{v.name} {e:.3f}" if e is not None else f"{v.name} n/a"
        for v, _, e in scored
        if v.name != best.name
    )
    shown = f"{error:.3f}" if error is not None else "n/a"
    chosen = replace(
        edit,
        plan=best.plan,
        summary=f"{edit.summary} [{kind} {best.name}: node error {shown}"
        + (f"; {others}" if others else "")
        + "]",
        details={**edit.details, "variant": best.name, "variants": table},
        variants=(),
    )
    return chosen, evaluation
