"""The accept rule of the loop (see ``docs/compiler.md``, step 8)."""

from __future__ import annotations

from dataclasses import dataclass

from sgde.optimize.evaluate import PlanEval

__all__ = ["Decision", "decide"]

_EPS = 1e-9


@dataclass(frozen=True)
class Decision:
    """Whether a candidate is kept, and why (one line for the report and history)."""

    accepted: bool
    why: str


def decide(current: PlanEval, candidate: PlanEval) -> Decision:
    """The accept rule: lower loss; or the same loss at a lower node-level error; or the same
    on both at fewer student tokens."""
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
