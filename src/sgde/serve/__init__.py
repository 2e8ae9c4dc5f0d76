"""Serving compiled plans over HTTP: versions, A/B splits, rollback, metrics, traces, a log.

Needs the ``serve`` extra (``pip install "sgde[serve]"``: FastAPI, uvicorn,
prometheus-client); OpenTelemetry export needs ``sgde[otel]``. Start with ``sgde serve`` or::

    from sgde.serve import Registry, ServeSettings, build_app

The modules: :mod:`~sgde.serve.registry` (versions and the traffic split),
:mod:`~sgde.serve.service` (the request path), :mod:`~sgde.serve.app` (the HTTP API),
:mod:`~sgde.serve.log` (the production log), :mod:`~sgde.serve.recompile` (recompiling from
labelled log rows), :mod:`~sgde.serve.telemetry` and :mod:`~sgde.serve.metrics`.
"""

from sgde.serve.errors import ApiError
from sgde.serve.log import LogRecord, RequestLog
from sgde.serve.registry import PlanEntry, PlanVersion, Registry
from sgde.serve.settings import ServeSettings

__all__ = [
    "ApiError",
    "LogRecord",
    "PlanEntry",
    "PlanVersion",
    "Registry",
    "RequestLog",
    "ServeSettings",
]
