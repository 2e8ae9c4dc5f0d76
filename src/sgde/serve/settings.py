"""Settings of one ``sgde serve`` process."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ServeSettings"]


class ServeSettings(BaseModel):
    """Limits, addresses and switches of the plan server.

    Attributes:
        host: Interface to bind (``127.0.0.1``: this machine only; ``0.0.0.0`` exposes it).
        port: TCP port.
        max_concurrency: Plan runs in flight at once (requests beyond it queue).
        queue_size: Requests that may wait for a run slot; one more is refused with 429 and a
            ``Retry-After`` header.
        request_timeout_s: Deadline of one request, queueing included (504 past it).
        max_body_bytes: Largest request body accepted (413 above it).
        max_batch: Most rows in one batch request.
        admin_token: Bearer token of the admin endpoints (promote, rollback, weights, labels);
            without one those endpoints answer 403.
        log_path: SQLite file of the production log (inputs, outputs, version per request);
            ``None`` logs nothing.
        routing_path: YAML file of traffic weights per plan; admin changes are saved to it.
        watch_interval_s: How often the served files and directories are checked for new,
            changed or removed plans (0 disables watching).
        shutdown_timeout_s: How long a stopping server waits for requests in flight.
        seed: Run seed of every request that does not send its own.
        sandbox_workers: Worker processes of the code sandbox.
        node_concurrency: Model/code calls in flight within one run.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    max_concurrency: int = Field(default=4, ge=1)
    queue_size: int = Field(default=64, ge=0)
    request_timeout_s: float = Field(default=120.0, gt=0)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_batch: int = Field(default=256, ge=1)
    admin_token: str | None = Field(default=None, repr=False)
    log_path: Path | None = None
    routing_path: Path | None = None
    watch_interval_s: float = Field(default=2.0, ge=0)
    shutdown_timeout_s: float = Field(default=30.0, gt=0)
    seed: int = 0
    sandbox_workers: int = Field(default=2, ge=1)
    node_concurrency: int = Field(default=4, ge=1)
