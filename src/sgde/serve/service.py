"""The plan service: runs requests on the routed plan version, with limits, logs and metrics.

Independent of the web framework (the FastAPI app in :mod:`sgde.serve.app` is a thin layer
over it), so the request path is testable without HTTP. One :class:`PlanService` owns a
model hub, a sandbox, one executor per plan version (each bound to that version's recorded
student unless ``--model`` overrides it) and the admission control.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sgde.errors import SgdeError, UsageError
from sgde.models.hub import ModelHub
from sgde.models.plan_models import plan_model_targets
from sgde.plan import CodeNode
from sgde.runtime.backend import Backend
from sgde.runtime.calls import CodeRunner
from sgde.runtime.executor import Executor, ExecutorSettings, RunResult
from sgde.runtime.inputs import coerce_input
from sgde.runtime.observe import ExecutionObserver, MultiObserver
from sgde.runtime.trace import RunTrace
from sgde.serve.admission import Admission
from sgde.serve.errors import ApiError
from sgde.serve.log import LogRecord, RequestLog
from sgde.serve.metrics import Metrics, make_metrics
from sgde.serve.probe import ProbeObserver, RunProbe, current_probe
from sgde.serve.registry import PlanVersion, Registry
from sgde.serve.settings import ServeSettings

__all__ = ["Outcome", "PlanService", "check_inputs", "failure_error"]

logger = logging.getLogger("sgde.serve")

SandboxFactory = Callable[[], contextlib.AbstractAsyncContextManager[CodeRunner]]


@dataclass
class Outcome:
    """One answered run.

    Attributes:
        request_id: The request's id.
        version: The plan version that ran.
        result: The executor's result.
        latency_s: Admission to answer.
        error: The HTTP error when the run failed (502/504/422 naming the node).
    """

    request_id: str
    version: PlanVersion
    result: RunResult | None
    latency_s: float
    error: ApiError | None = None

    def body(self, *, trace: bool = False) -> dict[str, Any]:
        """The JSON response of a successful run."""
        assert self.result is not None
        t = self.result.trace
        out: dict[str, Any] = {
            "request_id": self.request_id,
            "plan": self.version.name,
            "version": self.version.version,
            "outputs": self.result.outputs,
            "usage": {
                **t.usage.to_dict(),
                "by_role": {role: u.to_dict() for role, u in t.usage_by_role.items()},
            },
            "latency_s": round(self.latency_s, 6),
        }
        if trace:
            out["trace"] = t.to_dict()
        return out


def check_inputs(
    plan_inputs: Mapping[str, str], given: Any, *, where: str = "inputs"
) -> dict[str, Any]:
    """Check request inputs against a plan's declared inputs (422 naming the field).

    Raises:
        ApiError: 422 for a non-object, a missing, unknown or mistyped input.
    """
    if not isinstance(given, Mapping):
        raise ApiError(
            422, "invalid_input", f"'{where}' must be an object of plan inputs", field=where
        )
    declared = ", ".join(f"{n} ({t})" for n, t in plan_inputs.items()) or "none"
    for name in given:
        if name not in plan_inputs:
            raise ApiError(
                422,
                "invalid_input",
                f"unknown input '{name}'; the plan takes: {declared}",
                field=f"{where}.{name}",
            )
    values: dict[str, Any] = {}
    for name, kind in plan_inputs.items():
        if name not in given:
            raise ApiError(
                422,
                "invalid_input",
                f"missing input '{name}' ({kind}); the plan takes: {declared}",
                field=f"{where}.{name}",
            )
        try:
            values[name] = coerce_input(name, kind, given[name])
        except UsageError as exc:
            raise ApiError(422, "invalid_input", exc.message, field=f"{where}.{name}") from None
    return values


def _first_failure(trace: RunTrace) -> tuple[str | None, dict[str, Any]]:
    for node in trace.nodes:
        if node.status == "error":
            return node.node_id, node.error or {}
    return None, {}


def failure_error(result: RunResult, version: PlanVersion) -> ApiError:
    """The HTTP error of a run that did not succeed, naming the failed node.

    * a model backend that timed out: 504 ``backend_timeout``;
    * a model backend that failed (connection, HTTP error, open circuit): 502
      ``backend_error`` (503 ``backend_unavailable`` with ``Retry-After`` for an open
      circuit breaker);
    * model output that never parsed: 502 ``bad_model_output``;
    * a code node or anything else failing on this input: 422 ``plan_failed``.
    """
    node, info = _first_failure(result.trace)
    kinds = [str(info.get("type", ""))]
    if node is not None:
        failed = next(n for n in result.trace.nodes if n.node_id == node)
        kinds += [str((s.error or {}).get("type", "")) for s in failed.samples if s.error]
    message = result.error or "the plan failed"
    extra = {"version": version.version}
    where = f"node '{node}'" if node else "the plan"
    if "NodeTimeoutError" in kinds or "TimeoutError" in kinds:
        return ApiError(
            504, "backend_timeout", f"{where} timed out: {message}", node=node, extra=extra
        )
    if "CircuitOpenError" in kinds:
        return ApiError(
            503,
            "backend_unavailable",
            f"{where}: the model endpoint is down: {message}",
            node=node,
            headers={"Retry-After": "5"},
            extra=extra,
        )
    if "BackendError" in kinds:
        return ApiError(
            502,
            "backend_error",
            f"{where}: the model backend failed: {message}",
            node=node,
            extra=extra,
        )
    if "OutputParseError" in kinds:
        return ApiError(
            502,
            "bad_model_output",
            f"{where}: the model gave no usable output: {message}",
            node=node,
            extra=extra,
        )
    return ApiError(
        422, "plan_failed", f"{where} failed on this input: {message}", node=node, extra=extra
    )


class _SharedSandbox:
    """The service's sandbox, opened on first use (executors are built before it starts)."""

    def __init__(self, service: PlanService) -> None:
        self._service = service

    async def call(
        self,
        code: str,
        kwargs: dict[str, Any],
        *,
        entry: str = "run",
        timeout_s: float | None = None,
    ) -> Any:
        sandbox = await self._service._ensure_sandbox()
        return await sandbox.call(code, kwargs, entry=entry, timeout_s=timeout_s)


@dataclass
class _Runner:
    executor: Executor
    targets: dict[str, str]
    backends: list[Backend] = field(default_factory=list)
    warm: bool = False


class PlanService:
    """Serves the plans of a :class:`Registry`.

    Args:
        registry: The loaded registry.
        settings: Limits and switches.
        hub: The model hub (owned by the caller, who closes it).
        models: Role -> model name or backend, overriding the plans' recorded models.
        sandbox_factory: Opens the code sandbox (default: a ``SandboxPool``).
        observers: Further execution observers (e.g. OpenTelemetry).
        log: The production log, if enabled (closed by the caller).
    """

    def __init__(
        self,
        registry: Registry,
        settings: ServeSettings,
        *,
        hub: ModelHub,
        models: Mapping[str, str | Backend] | None = None,
        sandbox_factory: SandboxFactory | None = None,
        observers: tuple[ExecutionObserver, ...] = (),
        log: RequestLog | None = None,
    ) -> None:
        self.registry = registry
        self.settings = settings
        self.hub = hub
        self.models = dict(models or {})
        self.log = log
        self._sandbox_factory = sandbox_factory
        self._stack = contextlib.AsyncExitStack()
        self._sandbox: CodeRunner | None = None
        self._sandbox_lock = asyncio.Lock()
        self._shared_sandbox = _SharedSandbox(self)
        self.sandbox_warm = False
        self.admission = Admission(settings.max_concurrency, settings.queue_size)
        self.metrics: Metrics | None = make_metrics(
            in_flight=lambda: self.admission.running,
            queued=lambda: self.admission.waiting,
            rejected=lambda: self.admission.rejected,
        )
        chain: list[ExecutionObserver] = [ProbeObserver()]
        if self.metrics is not None:
            chain.append(self.metrics)
        chain.extend(observers)
        self._observer = MultiObserver(chain)
        self._runners: dict[str, _Runner] = {}
        self._watch_task: asyncio.Task[None] | None = None
        self.started = False
        self.stopping = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Open the sandbox, bind and load every version's models, start watching."""
        if any(
            isinstance(n, CodeNode)
            for e in self.registry.entries.values()
            for v in e.versions.values()
            for n in v.plan.nodes
        ):
            await self._ensure_sandbox()
        for entry in self.registry.entries.values():
            for pv in entry.versions.values():
                self._runner(pv)
        await self.warm_up()
        self._publish_weights()
        if self.settings.watch_interval_s > 0 and self.registry.sources:
            self._watch_task = asyncio.ensure_future(self._watch())
        self.started = True

    async def _ensure_sandbox(self) -> CodeRunner:
        if self._sandbox is not None:
            return self._sandbox
        async with self._sandbox_lock:
            return await self._open_sandbox()

    async def _open_sandbox(self) -> CodeRunner:
        if self._sandbox is None:
            if self._sandbox_factory is not None:
                factory = self._sandbox_factory
            else:
                from sgde.runtime.sandbox import SandboxPool

                workers = self.settings.sandbox_workers

                def factory() -> contextlib.AbstractAsyncContextManager[CodeRunner]:
                    return SandboxPool(workers=workers)

            self._sandbox = await self._stack.enter_async_context(factory())
            await self._sandbox.call("def run():\n    return {'ok': True}\n", {})
            self.sandbox_warm = True
        return self._sandbox

    async def warm_up(self) -> None:
        """Load every bound model now (the first request should not pay for it)."""
        for runner in list(self._runners.values()):
            if runner.warm:
                continue
            for backend in runner.backends:
                inner = getattr(backend, "backend", backend)
                load = getattr(inner, "load", None)
                if load is not None and asyncio.iscoroutinefunction(load):
                    await load()
            runner.warm = True

    def _runner(self, pv: PlanVersion) -> _Runner:
        runner = self._runners.get(pv.version)
        if runner is not None:
            return runner
        choice = plan_model_targets(pv.plan, self.models, option="--model")
        for note in choice.warnings:
            logger.warning("plan=%s version=%s %s", pv.name, pv.short, note)
        bindings = self.hub.bind(choice.targets)
        needs_code = any(isinstance(n, CodeNode) for n in pv.plan.nodes)
        executor = Executor(
            bindings,
            sandbox=self._shared_sandbox if needs_code else None,
            settings=ExecutorSettings(max_concurrency=self.settings.node_concurrency),
            observer=self._observer,
        )
        runner = _Runner(executor, choice.names(), list(bindings.values()))
        self._runners[pv.version] = runner
        logger.info(
            "plan=%s version=%s loaded from %s (models: %s)",
            pv.name,
            pv.short,
            pv.source,
            ", ".join(f"{r}={m}" for r, m in runner.targets.items()) or "none",
        )
        return runner

    async def reload(self) -> list[str]:
        """Reload the sources now; returns one message per problem (bad files keep serving)."""
        added, problems = self.registry.reload()
        if any(isinstance(n, CodeNode) for v in added for n in v.plan.nodes):
            await self._ensure_sandbox()
        for pv in added:
            try:
                self._runner(pv)
            except SgdeError as exc:
                problems.append(f"{pv.source}: {exc.message}")
                self.registry.drop(pv.version)
        for message in problems:
            logger.error("reload: %s", message)
        await self.warm_up()
        self._publish_weights()
        return problems

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.watch_interval_s)
            try:
                if self.registry.changed():
                    await self.reload()
            except Exception:  # keep watching; the message says what broke
                logger.exception("reload failed; still serving the previous plans")

    async def aclose(self) -> None:
        """Stop watching and close the sandbox (the caller closes hub and log)."""
        self.stopping = True
        self.admission.close()
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        await self._stack.aclose()

    def readiness(self) -> dict[str, Any]:
        """What ``/readyz`` reports: models loaded, sandbox warm, not stopping."""
        needs_sandbox = any(
            isinstance(n, CodeNode)
            for e in self.registry.entries.values()
            for v in e.versions.values()
            for n in v.plan.nodes
        )
        models = {
            f"{v.name}@{v.short}": self._runners[v.version].warm
            for e in self.registry.entries.values()
            for v in e.versions.values()
            if v.version in self._runners
        }
        ready = (
            self.started
            and not self.stopping
            and all(models.values())
            and (self.sandbox_warm or not needs_sandbox)
        )
        return {
            "ready": ready,
            "models_loaded": models,
            "sandbox_warm": self.sandbox_warm if needs_sandbox else None,
            "stopping": self.stopping,
        }

    def _publish_weights(self) -> None:
        if self.metrics is not None:
            self.metrics.set_weights({n: e.weights for n, e in self.registry.entries.items()})

    # ------------------------------------------------------------------ requests

    async def run(
        self,
        name: str,
        inputs: Any,
        *,
        version: str | None = None,
        caller: str | None = None,
        seed: int | None = None,
    ) -> Outcome:
        """Run one request end to end: route, check, admit, run, log, count.

        Raises:
            ApiError: 4xx for the request, 429/503 when refused, 504 past the deadline.
                Failed runs are returned (``Outcome.error``), not raised.
        """
        pv = self.registry.route(name, version=version, caller=caller)
        try:
            values = check_inputs(pv.plan.inputs, inputs)
        except ApiError as exc:
            exc.extra.setdefault("version", pv.version)
            raise
        request_id = uuid.uuid4().hex
        started = time.perf_counter()
        try:
            result = await self._admitted_run(pv, values, seed)
        except ApiError as exc:
            latency = time.perf_counter() - started
            exc.extra.setdefault("version", pv.version)
            await self._account(request_id, pv, values, None, exc, latency, caller)
            raise
        latency = time.perf_counter() - started
        error = None if result.ok else failure_error(result, pv)
        outcome = Outcome(request_id, pv, result, latency, error)
        await self._account(request_id, pv, values, result, error, latency, caller)
        return outcome

    async def _admitted_run(
        self, pv: PlanVersion, values: dict[str, Any], seed: int | None
    ) -> RunResult:
        probe = RunProbe()
        admitted = False

        async def go() -> RunResult:
            nonlocal admitted
            async with self.admission.slot():
                admitted = True
                runner = self._runner(pv)
                token = current_probe.set(probe)
                try:
                    return await runner.executor.run(
                        pv.plan, values, seed=self.settings.seed if seed is None else seed
                    )
                finally:
                    current_probe.reset(token)

        timeout = self.settings.request_timeout_s
        try:
            return await asyncio.wait_for(go(), timeout)
        except asyncio.TimeoutError:
            if not admitted:
                raise ApiError(
                    504,
                    "timeout",
                    f"waited {timeout:g} s in the queue without a free run slot; retry later",
                ) from None
            node = probe.active[0] if probe.active else None
            running = ", ".join(f"'{n}'" for n in probe.active) or "none"
            raise ApiError(
                504,
                "timeout",
                f"the run passed the {timeout:g} s request timeout; still running: {running}",
                node=node,
            ) from None

    async def _account(
        self,
        request_id: str,
        pv: PlanVersion,
        values: dict[str, Any],
        result: RunResult | None,
        error: ApiError | None,
        latency: float,
        caller: str | None,
    ) -> None:
        status = 200 if error is None else error.status
        if self.log is not None and status != 429:
            usage: dict[str, Any] = {}
            if result is not None:
                usage = {
                    "total": result.trace.usage.to_dict(),
                    "by_role": {r: u.to_dict() for r, u in result.trace.usage_by_role.items()},
                }
            await self.log.arecord(
                LogRecord(
                    id=request_id,
                    plan=pv.name,
                    version=pv.version,
                    caller=caller,
                    inputs=values,
                    outputs=dict(result.outputs) if result is not None and error is None else {},
                    ok=error is None,
                    status=status,
                    latency_s=latency,
                    error=error.message if error is not None else None,
                    usage=usage,
                )
            )
        if self.metrics is not None:
            self.metrics.request(pv.name, pv.version, status, latency)
            if error is not None:
                self.metrics.error(pv.name, pv.version, error.code)
            if result is not None:
                self.metrics.usage(pv.name, pv.version, result)
        logger.info(
            "request=%s plan=%s version=%s status=%d latency=%.3fs%s%s",
            request_id,
            pv.name,
            pv.short,
            status,
            latency,
            f" caller={caller}" if caller else "",
            f" error={error.code} node={error.node}" if error is not None else "",
        )
