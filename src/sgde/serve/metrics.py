"""Prometheus metrics of the plan server (``GET /metrics``), one registry per server.

Series (labels in brackets; ``version`` is the short plan version):

* ``sgde_requests_total`` [plan, version, status] — answered requests by HTTP status
* ``sgde_request_duration_seconds`` [plan, version] — latency histogram (admission to answer)
* ``sgde_request_errors_total`` [plan, version, code] — failed requests by error code
* ``sgde_tokens_total`` [plan, version, role, kind] — model tokens, ``kind`` input/output
* ``sgde_node_duration_seconds`` [plan, version, node, kind, status] — per-node latency
* ``sgde_requests_in_flight``, ``sgde_requests_queued``, ``sgde_requests_rejected_total``
* ``sgde_plan_weight`` [plan, version] — the current traffic split

Needs ``prometheus-client`` (in ``sgde[serve]``); without it :func:`make_metrics` returns
``None`` and ``/metrics`` answers 501.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sgde.runtime.executor import RunResult
from sgde.runtime.observe import RunInfo
from sgde.runtime.trace import NodeTrace
from sgde.serve.registry import short_version

__all__ = ["Metrics", "make_metrics"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """The server's metrics; also an execution observer (per-node latency).

    Args:
        prom: The ``prometheus_client`` module.
        in_flight: Returns requests running now.
        queued: Returns requests waiting for a slot.
        rejected: Returns requests refused with 429 so far.
    """

    def __init__(
        self,
        prom: Any,
        *,
        in_flight: Callable[[], float],
        queued: Callable[[], float],
        rejected: Callable[[], float],
    ) -> None:
        self._prom = prom
        self.registry = prom.CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = prom.Counter(
            "sgde_requests", "Answered requests", ["plan", "version", "status"], registry=r
        )
        self.latency = prom.Histogram(
            "sgde_request_duration_seconds",
            "Request latency from admission to answer",
            ["plan", "version"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.errors = prom.Counter(
            "sgde_request_errors", "Failed requests", ["plan", "version", "code"], registry=r
        )
        self.tokens = prom.Counter(
            "sgde_tokens", "Model tokens", ["plan", "version", "role", "kind"], registry=r
        )
        self.nodes = prom.Histogram(
            "sgde_node_duration_seconds",
            "Node latency",
            ["plan", "version", "node", "kind", "status"],
            buckets=_BUCKETS,
            registry=r,
        )
        self.weights = prom.Gauge(
            "sgde_plan_weight", "Traffic share per plan version", ["plan", "version"], registry=r
        )
        prom.Gauge("sgde_requests_in_flight", "Runs in flight", registry=r).set_function(in_flight)
        prom.Gauge("sgde_requests_queued", "Requests waiting", registry=r).set_function(queued)
        rejected_total = prom.Counter(
            "sgde_requests_rejected", "Requests refused with 429", registry=r
        )
        self._rejected = rejected
        self._rejected_counter = rejected_total
        self._rejected_seen = 0.0

    def request(self, plan: str, version: str, status: int, latency_s: float) -> None:
        """Count one answered request."""
        v = short_version(version) if version else ""
        self.requests.labels(plan, v, str(status)).inc()
        if version:
            self.latency.labels(plan, v).observe(latency_s)

    def error(self, plan: str, version: str, code: str) -> None:
        """Count one failed request."""
        self.errors.labels(plan, short_version(version) if version else "", code).inc()

    def usage(self, plan: str, version: str, result: RunResult) -> None:
        """Add a run's tokens per role."""
        v = short_version(version)
        for role, usage in result.trace.usage_by_role.items():
            if usage.prompt_tokens:
                self.tokens.labels(plan, v, role, "input").inc(usage.prompt_tokens)
            if usage.completion_tokens:
                self.tokens.labels(plan, v, role, "output").inc(usage.completion_tokens)

    def set_weights(self, weights: dict[str, dict[str, float]]) -> None:
        """Publish the traffic split (plan -> version -> share)."""
        self.weights.clear()
        for plan, split in weights.items():
            for version, share in split.items():
                self.weights.labels(plan, short_version(version)).set(share)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        seen = float(self._rejected())
        if seen > self._rejected_seen:
            self._rejected_counter.inc(seen - self._rejected_seen)
            self._rejected_seen = seen
        return self._prom.generate_latest(self.registry), self._prom.CONTENT_TYPE_LATEST

    # ------------------------------------------------------------------ observer

    def on_run_start(self, run: RunInfo) -> None:
        return None

    def on_node_start(self, run: RunInfo, node_id: str, kind: str) -> None:
        return None

    def on_node_end(self, run: RunInfo, trace: NodeTrace) -> None:
        self.nodes.labels(
            run.plan_name, short_version(run.plan_hash), trace.node_id, trace.kind, trace.status
        ).observe(trace.latency_s)

    def on_run_end(
        self, run: RunInfo, result: RunResult | None, error: BaseException | None
    ) -> None:
        return None


def make_metrics(
    *,
    in_flight: Callable[[], float],
    queued: Callable[[], float],
    rejected: Callable[[], float],
) -> Metrics | None:
    """Metrics when ``prometheus-client`` is installed, else ``None``."""
    try:
        import prometheus_client
    except ImportError:
        return None
    return Metrics(prometheus_client, in_flight=in_flight, queued=queued, rejected=rejected)
