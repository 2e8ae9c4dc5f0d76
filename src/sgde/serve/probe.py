"""Which nodes of a request's run are running right now (for the timeout message).

The service sets :data:`current_probe` before it starts a run; the executor's node tasks
inherit the context, so :class:`ProbeObserver` finds the request's probe in every hook.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field

from sgde.runtime.executor import RunResult
from sgde.runtime.observe import RunInfo
from sgde.runtime.trace import NodeTrace

__all__ = ["ProbeObserver", "RunProbe", "current_probe"]


@dataclass
class RunProbe:
    """What one request's run is doing.

    Attributes:
        run_id: The run's id, once started.
        active: Nodes running now, in start order.
        finished: Nodes finished so far.
    """

    run_id: str | None = None
    active: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)


current_probe: ContextVar[RunProbe | None] = ContextVar("sgde_serve_probe", default=None)


class ProbeObserver:
    """Keeps the current request's :class:`RunProbe` up to date."""

    def on_run_start(self, run: RunInfo) -> None:
        probe = current_probe.get()
        if probe is not None:
            probe.run_id = run.run_id

    def on_node_start(self, run: RunInfo, node_id: str, kind: str) -> None:
        probe = current_probe.get()
        if probe is not None:
            probe.active.append(node_id)

    def on_node_end(self, run: RunInfo, trace: NodeTrace) -> None:
        probe = current_probe.get()
        if probe is not None:
            if trace.node_id in probe.active:
                probe.active.remove(trace.node_id)
            probe.finished.append(trace.node_id)

    def on_run_end(
        self, run: RunInfo, result: RunResult | None, error: BaseException | None
    ) -> None:
        return None
