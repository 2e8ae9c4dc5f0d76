"""The HTTP API (FastAPI) over a :class:`~sgde.serve.service.PlanService`.

Endpoints (OpenAPI at ``/docs`` and ``/openapi.json``):

* ``POST /v1/plans/{name}/run`` — ``{"inputs": {...}, "version"?, "caller"?, "seed"?,
  "trace"?}`` → outputs, version, usage, latency (and the trace when asked)
* ``POST /v1/plans/{name}/batch`` — ``{"inputs": [{...}, ...], ...}`` → one result per row
* ``GET /v1/plans`` / ``GET /v1/plans/{name}`` — versions, weights, input/output schemas
* ``GET /healthz`` (the process answers), ``GET /readyz`` (models loaded, sandbox warm)
* ``GET /metrics`` — Prometheus
* admin, with ``Authorization: Bearer TOKEN``: ``PUT /v1/admin/plans/{name}/weights``,
  ``POST /v1/admin/plans/{name}/promote``, ``POST /v1/admin/plans/{name}/rollback``,
  ``POST /v1/admin/reload``, ``GET /v1/log/{id}``, ``POST /v1/log/{id}/label``

The caller key and a pinned version may also come as headers (``X-Sgde-Caller``,
``X-Sgde-Version``). Every plan response carries ``X-Request-Id`` and ``X-Sgde-Version``.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sgde._version import __version__
from sgde.errors import SgdeError, UsageError
from sgde.serve.errors import ApiError
from sgde.serve.service import Outcome, PlanService, check_inputs

__all__ = ["create_app"]


class RunRequest(BaseModel):
    """One run of a plan."""

    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(description="The plan's inputs (see GET /v1/plans).")
    version: str | None = Field(default=None, description="Pin a version (hash or prefix).")
    caller: str | None = Field(
        default=None, max_length=256, description="Caller key: keeps a caller on one version."
    )
    seed: int | None = Field(default=None, description="Run seed (default: the server's).")
    trace: bool = Field(default=False, description="Include the full run trace.")


class BatchRequest(BaseModel):
    """Several runs of one plan version."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[dict[str, Any]] = Field(description="One object of plan inputs per row.")
    version: str | None = None
    caller: str | None = Field(default=None, max_length=256)
    seed: int | None = None
    trace: bool = False


class WeightsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weights: dict[str, float] = Field(description="Version (hash or prefix) -> weight.")


class PromoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str


class LabelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outputs: dict[str, Any] = Field(description='The correct outputs, e.g. {"answer": 18}.')


def _error_response(exc: ApiError, **extra: Any) -> JSONResponse:
    return JSONResponse(
        {"error": exc.body(), **extra}, status_code=exc.status, headers=exc.headers or None
    )


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes with 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = ApiError(
            413,
            "body_too_large",
            f"the request body is larger than the limit of {self.limit:,} bytes; send fewer "
            "rows per batch or raise --max-body-bytes",
            field="body",
        )
        for key, value in scope.get("headers", []):
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _error_response(too_big)(scope, receive, send)
                return
        # Read the whole body first (it is bounded by the limit), then replay it to the app:
        # a streamed body over the limit is refused before the app sees any of it.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.limit:
                await _error_response(too_big)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], then=receive), send)


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A ``receive`` that yields ``messages``, then defers to ``then`` (disconnects)."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


def create_app(
    service: PlanService,
    *,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
) -> FastAPI:
    """The FastAPI app serving ``service`` (started and stopped by the app's lifespan).

    Args:
        service: The plan service (not yet started).
        on_shutdown: Called after the service stopped (close the hub, the log, exporters).
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.aclose()
            if on_shutdown is not None:
                await on_shutdown()

    app = FastAPI(
        title="sgde plan server",
        version=__version__,
        description="Runs compiled sgde execution plans with their student models.",
        lifespan=lifespan,
    )
    settings = service.settings

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            ctx = first.get("ctx") or {}
            return _error_response(
                ApiError(
                    400,
                    "malformed_json",
                    f"the request body is not valid JSON: {ctx.get('error', 'parse error')}",
                    field="body",
                )
            )
        loc = first.get("loc", ("body",))
        field = _field(loc)
        message = str(first.get("msg", "invalid value"))
        if first.get("type") == "missing":
            message = f"field '{field}' is required"
        elif first.get("type") == "extra_forbidden":
            message = f"unknown field '{field}'"
        else:
            message = f"field '{field}': {message}"
        return _error_response(ApiError(422, "invalid_request", message, field=field))

    @app.exception_handler(SgdeError)
    async def _sgde_error(_request: Request, exc: SgdeError) -> JSONResponse:
        status = 422 if isinstance(exc, UsageError) else 500
        return _error_response(ApiError(status, "error", exc.message))

    def _admin(authorization: str | None) -> None:
        token = settings.admin_token
        if not token:
            raise ApiError(
                403,
                "admin_disabled",
                "admin endpoints are off: start the server with --admin-token (or "
                "$SGDE_ADMIN_TOKEN)",
            )
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not authorization or not hmac.compare_digest(given.encode(), token.encode()):
            raise ApiError(
                401,
                "unauthorized",
                "send the admin token as 'Authorization: Bearer TOKEN'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def _answer(outcome: Outcome, *, trace: bool) -> JSONResponse:
        headers = {"X-Request-Id": outcome.request_id, "X-Sgde-Version": outcome.version.version}
        if outcome.error is not None:
            body: dict[str, Any] = {
                "error": outcome.error.body(),
                "request_id": outcome.request_id,
                "plan": outcome.version.name,
                "version": outcome.version.version,
            }
            if trace and outcome.result is not None:
                body["trace"] = outcome.result.trace.to_dict()
            return JSONResponse(
                body, status_code=outcome.error.status, headers={**headers, **outcome.error.headers}
            )
        return JSONResponse(outcome.body(trace=trace), headers=headers)

    @app.post("/v1/plans/{name}/run", tags=["plans"], summary="Run a plan once")
    async def run_plan(
        name: str,
        body: RunRequest,
        x_sgde_caller: str | None = Header(default=None),
        x_sgde_version: str | None = Header(default=None),
    ) -> Response:
        outcome = await service.run(
            name,
            body.inputs,
            version=body.version or x_sgde_version,
            caller=body.caller or x_sgde_caller,
            seed=body.seed,
        )
        return _answer(outcome, trace=body.trace)

    @app.post("/v1/plans/{name}/batch", tags=["plans"], summary="Run a plan on several rows")
    async def run_batch(
        name: str,
        body: BatchRequest,
        x_sgde_caller: str | None = Header(default=None),
        x_sgde_version: str | None = Header(default=None),
    ) -> Response:
        if not body.inputs:
            raise ApiError(
                422, "invalid_request", "'inputs' must hold at least one row", field="inputs"
            )
        if len(body.inputs) > settings.max_batch:
            raise ApiError(
                422,
                "batch_too_large",
                f"{len(body.inputs)} rows; a batch holds at most {settings.max_batch}",
                field="inputs",
            )
        pv = service.registry.route(
            name, version=body.version or x_sgde_version, caller=body.caller or x_sgde_caller
        )
        for i, row in enumerate(body.inputs):
            check_inputs(pv.plan.inputs, row, where=f"inputs[{i}]")

        # a batch holds at most as many run slots as the server has, so its own rows never
        # fill the queue and bounce with 429
        rows_in_flight = asyncio.Semaphore(settings.max_concurrency)

        async def one(row: dict[str, Any]) -> dict[str, Any]:
            try:
                async with rows_in_flight:
                    outcome = await service.run(
                        name, row, version=pv.version, caller=body.caller, seed=body.seed
                    )
            except ApiError as exc:
                return {"status": exc.status, "error": exc.body()}
            if outcome.error is not None:
                return {
                    "status": outcome.error.status,
                    "request_id": outcome.request_id,
                    "error": outcome.error.body(),
                }
            return {"status": 200, **outcome.body(trace=body.trace)}

        results = await asyncio.gather(*(one(r) for r in body.inputs))
        return JSONResponse(
            {
                "plan": pv.name,
                "version": pv.version,
                "ok": sum(r["status"] == 200 for r in results),
                "results": results,
            },
            headers={"X-Sgde-Version": pv.version},
        )

    @app.get("/v1/plans", tags=["plans"], summary="Served plans, versions and schemas")
    async def list_plans() -> dict[str, Any]:
        return {"plans": service.registry.describe()}

    @app.get("/v1/plans/{name}", tags=["plans"], summary="One plan's versions and schemas")
    async def get_plan(name: str) -> dict[str, Any]:
        service.registry.entry(name)
        return next(p for p in service.registry.describe() if p["name"] == name)

    @app.get("/healthz", tags=["operations"], summary="Liveness")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["operations"], summary="Readiness: models loaded, sandbox warm")
    async def readyz() -> Response:
        state = service.readiness()
        return JSONResponse(state, status_code=200 if state["ready"] else 503)

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics")
    async def metrics() -> Response:
        if service.metrics is None:
            raise ApiError(
                501,
                "metrics_unavailable",
                'metrics need prometheus-client: pip install "sgde[serve]"',
            )
        data, content_type = service.metrics.render()
        return Response(data, media_type=content_type)

    @app.put("/v1/admin/plans/{name}/weights", tags=["admin"], summary="Set the traffic split")
    async def set_weights(
        name: str, body: WeightsRequest, authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        _admin(authorization)
        weights = service.registry.set_weights(name, body.weights)
        service._publish_weights()
        return {"plan": name, "weights": weights}

    @app.post("/v1/admin/plans/{name}/promote", tags=["admin"], summary="All traffic to a version")
    async def promote(
        name: str, body: PromoteRequest, authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        _admin(authorization)
        weights = service.registry.promote(name, body.version)
        service._publish_weights()
        return {"plan": name, "weights": weights}

    @app.post("/v1/admin/plans/{name}/rollback", tags=["admin"], summary="Undo the last change")
    async def rollback(
        name: str, authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        _admin(authorization)
        weights = service.registry.rollback(name)
        service._publish_weights()
        return {"plan": name, "weights": weights}

    @app.post("/v1/admin/reload", tags=["admin"], summary="Reload plan files now")
    async def reload(authorization: str | None = Header(default=None)) -> dict[str, Any]:
        _admin(authorization)
        problems = await service.reload()
        return {"plans": service.registry.describe(), "problems": problems}

    def _log() -> Any:
        if service.log is None:
            raise ApiError(404, "log_disabled", "the request log is off: start with --log FILE")
        return service.log

    @app.get("/v1/log/{request_id}", tags=["admin"], summary="One logged request")
    async def get_logged(
        request_id: str, authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        _admin(authorization)
        found = await asyncio.to_thread(_log().get, request_id)
        if found is None:
            raise ApiError(404, "unknown_request", f"no logged request has id {request_id!r}")
        return dict(found.to_dict())

    @app.post("/v1/log/{request_id}/label", tags=["admin"], summary="Attach the correct outputs")
    async def label(
        request_id: str, body: LabelRequest, authorization: str | None = Header(default=None)
    ) -> dict[str, Any]:
        _admin(authorization)
        log = _log()
        if await asyncio.to_thread(log.get, request_id) is None:
            raise ApiError(404, "unknown_request", f"no logged request has id {request_id!r}")
        record = await asyncio.to_thread(log.label, request_id, body.outputs)
        return dict(record.to_dict())

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return app
