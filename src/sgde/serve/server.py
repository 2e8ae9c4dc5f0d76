"""Run the plan server with uvicorn: build the pieces, serve, shut down gracefully.

On SIGTERM/SIGINT uvicorn stops accepting connections, lets the requests in flight finish
(up to ``shutdown_timeout_s``), then the app's lifespan closes the service, the models, the
log and the span exporter.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sgde.models.hub import ModelHub
from sgde.models.settings import ModelSettings
from sgde.runtime.backend import Backend
from sgde.runtime.observe import ExecutionObserver
from sgde.serve.log import RequestLog
from sgde.serve.registry import Registry
from sgde.serve.service import PlanService
from sgde.serve.settings import ServeSettings
from sgde.serve.telemetry import OtelObserver, tracer_from_option

__all__ = ["build_app", "configure_logging", "run_server"]


def build_app(
    sources: Sequence[Path],
    settings: ServeSettings,
    *,
    models: Mapping[str, str | Backend] | None = None,
    model_settings: ModelSettings | None = None,
    otel: str = "none",
) -> tuple[Any, PlanService]:
    """Load the plans and build the app (nothing starts until the app's lifespan runs).

    Raises:
        SgdeError: A plan file does not load, the routing file is invalid, a role has no
            model, a model name does not resolve.
    """
    from sgde.serve.app import create_app

    registry = Registry(sources, routing_path=settings.routing_path)
    registry.load()
    hub = ModelHub(model_settings)
    log = RequestLog(settings.log_path) if settings.log_path is not None else None
    observers: tuple[ExecutionObserver, ...] = ()
    tracing = tracer_from_option(otel)
    if tracing is not None:
        observers = (OtelObserver(tracing[0]),)
    service = PlanService(registry, settings, hub=hub, models=models, log=log, observers=observers)
    for entry in registry.entries.values():  # fail before binding a port on unbindable plans
        for pv in entry.versions.values():
            service._runner(pv)

    async def close() -> None:
        await hub.aclose()
        if log is not None:
            log.close()
        if tracing is not None:
            tracing[1].shutdown()

    return create_app(service, on_shutdown=close), service


def configure_logging() -> None:
    """One line per event of ``sgde.serve`` on stderr (request lines carry the version)."""
    logger = logging.getLogger("sgde.serve")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def run_server(app: Any, settings: ServeSettings) -> None:
    """Serve ``app`` on ``settings.host:port`` until SIGTERM/SIGINT (blocking)."""
    import uvicorn

    configure_logging()
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        access_log=False,  # the service logs one line per request, with the version
        timeout_graceful_shutdown=int(settings.shutdown_timeout_s),
        log_level="info",
        lifespan="on",
    )
    uvicorn.Server(config).run()
