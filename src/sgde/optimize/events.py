"""Progress events the compiler emits (the CLI's live view listens to them).

A listener is any callable taking one :class:`CompileEvent`; exceptions raised by a
listener are not caught, so keep listeners simple.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["CompileEvent", "EventKind", "EventSink", "emit"]

EventKind = Literal[
    "start",
    "coldstart",
    "supervision",
    "forward",
    "critique",
    "edit",
    "accepted",
    "rejected",
    "no_edit",
    "teacher_retry",
    "checkpoint",
    "stop",
]


@dataclass(frozen=True)
class CompileEvent:
    """One progress event.

    Attributes:
        kind: What happened.
        iteration: Current iteration (0 = before the first step).
        message: One human-readable line.
        loss: Training loss when the event concerns an evaluation.
        teacher_tokens: Teacher tokens spent so far.
        student_tokens: Student tokens spent so far.
        usd: Cost so far, when prices are known.
        data: Extra structured detail.
    """

    kind: EventKind
    iteration: int
    message: str
    loss: float | None = None
    teacher_tokens: int = 0
    student_tokens: int = 0
    usd: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)


EventSink = Callable[[CompileEvent], None]


def emit(sink: EventSink | None, event: CompileEvent) -> None:
    """Send ``event`` to ``sink`` when there is one."""
    if sink is not None:
        sink(event)
