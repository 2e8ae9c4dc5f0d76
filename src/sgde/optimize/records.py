"""Typed records of the search: what was tried, on which node, and what became of it.

The loop keeps one :class:`EditRecord` per scored or failed edit. The teacher sees them as
short lines (:meth:`EditRecord.line`); checkpoints store them as dicts
(:meth:`EditRecord.to_dict` / :meth:`EditRecord.from_dict`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

__all__ = ["EditOutcome", "EditRecord", "history_lines"]

EditOutcome = Literal["accepted", "rejected", "failed"]


@dataclass(frozen=True)
class EditRecord:
    """One edit the loop tried.

    Attributes:
        iteration: The iteration it belongs to.
        direction: The operator (``offload``, ``consensus``, ``rewrite_prompt``...).
        node_id: The node it changed.
        outcome: ``accepted``, ``rejected`` (scored, not kept) or ``failed`` (no valid edit).
        summary: One line describing the edit (or the proposal, when it failed).
        reason: Why it was kept, rejected or why it failed.
        loss_before: End-to-end training loss of the plan it edited.
        loss_after: End-to-end training loss of the edited plan (scored edits only).
        node_loss_before: Supervised node-level error of the plan it edited.
        node_loss_after: Supervised node-level error of the edited plan.
        parent: For a compound edit (look-ahead), the summary of the edit it builds on.
        variant: For an edit built in prompt variants (an offload's extraction), the one
            kept: the lowest node-level error of the varied node, ties to the shorter prompt.
        variant_errors: That node's error on the training rows per variant.
    """

    iteration: int
    direction: str
    node_id: str
    outcome: EditOutcome
    summary: str
    reason: str
    loss_before: float | None = None
    loss_after: float | None = None
    node_loss_before: float | None = None
    node_loss_after: float | None = None
    parent: str | None = None
    variant: str | None = None
    variant_errors: dict[str, float | None] | None = None

    def line(self) -> str:
        """One line for the teacher's prompts."""
        head = f"then {self.summary}" if self.parent else self.summary
        if self.outcome == "failed":
            return f"{self.direction} on {self.node_id} failed: {self.reason[:200]}"
        return f"{head} was {self.outcome}: {self.reason[:200]}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EditRecord:
        names = {f.name for f in fields(cls)}
        missing = {"iteration", "direction", "node_id", "outcome", "summary", "reason"} - set(data)
        if missing:
            raise ValueError(f"edit record lacks {', '.join(sorted(missing))}")
        return cls(**{k: v for k, v in data.items() if k in names})


def history_lines(records: Sequence[EditRecord], *, direction: str | None = None) -> list[str]:
    """The teacher's view of the history, optionally only one direction's records."""
    return [r.line() for r in records if direction is None or r.direction == direction]
