"""Execution observers: hooks the executor calls as runs and nodes start and end.

An observer turns runs into telemetry (OpenTelemetry spans, metrics, "which node is still
running" for a server's timeout message) without the runtime knowing any telemetry library.
Pass one to :class:`~sgde.runtime.executor.Executor` (``observer=``); the executor calls it
from the event loop, in the task of the run (``on_run_*``) or of the node (``on_node_*``), so
context variables set by the caller before :meth:`Executor.run` are visible in every hook.

Observers must be quick and must not raise: an exception from a hook is logged and
ignored, so telemetry can never fail a run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sgde.runtime.executor import RunResult
    from sgde.runtime.trace import NodeTrace

__all__ = ["ExecutionObserver", "MultiObserver", "RunInfo", "notify"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunInfo:
    """Identity of one run, as the observer sees it.

    Attributes:
        run_id: The run's id (also the trace's ``run_id``).
        plan_name: The plan's name.
        plan_hash: The plan's content hash (its version).
        seed: The run seed.
    """

    run_id: str
    plan_name: str
    plan_hash: str
    seed: int


class ExecutionObserver(Protocol):
    """Receives run and node events from the executor (all methods are required)."""

    def on_run_start(self, run: RunInfo) -> None:
        """A run starts (after its inputs were checked)."""
        ...

    def on_node_start(self, run: RunInfo, node_id: str, kind: str) -> None:
        """A node starts running (dependencies done; skipped nodes never start)."""
        ...

    def on_node_end(self, run: RunInfo, trace: NodeTrace) -> None:
        """A node finished; ``trace.status`` says how (``ok`` or ``error``)."""
        ...

    def on_run_end(
        self, run: RunInfo, result: RunResult | None, error: BaseException | None
    ) -> None:
        """A run finished with ``result``, or was interrupted by ``error`` (cancelled, budget)."""
        ...


class MultiObserver:
    """Fans every event out to several observers, in order."""

    def __init__(self, observers: Sequence[ExecutionObserver]) -> None:
        self.observers = tuple(observers)

    def on_run_start(self, run: RunInfo) -> None:
        for o in self.observers:
            notify(o.on_run_start, run)

    def on_node_start(self, run: RunInfo, node_id: str, kind: str) -> None:
        for o in self.observers:
            notify(o.on_node_start, run, node_id, kind)

    def on_node_end(self, run: RunInfo, trace: NodeTrace) -> None:
        for o in self.observers:
            notify(o.on_node_end, run, trace)

    def on_run_end(
        self, run: RunInfo, result: RunResult | None, error: BaseException | None
    ) -> None:
        for o in self.observers:
            notify(o.on_run_end, run, result, error)


def notify(hook: Callable[..., object], *args: object) -> None:
    """Call an observer hook; log and swallow its exceptions (telemetry never fails a run)."""
    try:
        hook(*args)
    except Exception:
        logger.exception("execution observer %r failed; ignoring it", hook)
