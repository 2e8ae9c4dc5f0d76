"""A pool of sandbox worker processes serving asyncio callers."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import math
import sys
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from sgde.errors import SandboxError, UsageError
from sgde.runtime.sandbox.handle import (
    ISOLATION_ENV,
    REPAIR_HINT,
    WEAK_LOSS,
    Registry,
    WorkerHandle,
    frame,
    kill_worker,
    resolve_isolation,
    unavailable,
)
from sgde.runtime.sandbox.limits import MAX_TIMEOUT_S, SandboxLimits
from sgde.runtime.sandbox.policy import (
    ALLOWED_IMPORTS,
    ALLOWED_SUBMODULES,
    DENIED_MODULE_MEMBERS,
    SAFE_BUILTINS,
    PolicyViolation,
    check_source,
)
from sgde.runtime.sync import run_sync

__all__ = ["ISOLATION_ENV", "SandboxPool", "policy_error", "resolve_isolation", "run_code_sync"]

_LOG = logging.getLogger("sgde.sandbox")
_RUNTIME_RULES = frozenset(
    {
        "timeout",
        "memory-limit",
        "cpu-limit",
        "runtime-error",
        "output-too-large",
        "not-json",
        "forbidden-operation",
        "worker-crashed",
        "isolation-unavailable",
    }
)
_POLICY_CACHE_SIZE = 512
_FRAME_OVERHEAD = 256 * 1024


class SandboxPool:
    """Runs untrusted code-node functions in a pool of OS-confined worker processes.

    Every call is first checked by :func:`sgde.runtime.sandbox.policy.check_source`, then
    runs ``entry(**kwargs)`` in a fresh process forked for that call from a worker confined
    by Linux namespaces (no network, an empty read-only root, its own pid namespace and,
    under root, its own uid) and seccomp, with resource limits and the Python-level layers
    (restricted builtins and imports, audit hook) on top, and returns the JSON result. See
    ``docs/sandbox.md``. Use it as an async context manager; a pool belongs to the event
    loop it started on.

    Example:
        >>> async with SandboxPool(workers=2) as pool:  # doctest: +SKIP
        ...     await pool.call("def run(a, b):\\n    return {'sum': a + b}", {"a": 1, "b": 2})
        {'sum': 3}

    Args:
        workers: Number of worker processes (calls beyond it wait for a free worker).
        limits: Resource limits of every call.
        python: Interpreter for the workers (default: ``sys.executable``).
        max_calls_per_worker: Calls after which a worker is replaced.
        start_timeout_s: How long a worker may take to start.
        isolation: ``"strong"`` (OS confinement; the pool refuses to start where it is
            unavailable) or ``"weak"`` (Python-level layers only, an explicit opt-in);
            default: ``$SGDE_SANDBOX``, else ``"strong"``.

    Raises:
        UsageError: Invalid arguments or isolation name.
    """

    def __init__(
        self,
        *,
        workers: int = 2,
        limits: SandboxLimits | None = None,
        python: str | None = None,
        max_calls_per_worker: int = 1000,
        start_timeout_s: float = 60.0,
        isolation: str | None = None,
        _python_layers: bool = True,
        _preload: Sequence[str] = (),
    ) -> None:
        if workers < 1:
            raise UsageError(f"SandboxPool needs at least one worker, got workers={workers}")
        if max_calls_per_worker < 1:
            raise UsageError("max_calls_per_worker must be at least 1")
        self._size = workers
        self._limits = limits if limits is not None else SandboxLimits()
        self._python = python or sys.executable
        self._max_calls = max_calls_per_worker
        self._start_timeout = start_timeout_s
        self._isolation = resolve_isolation(isolation)
        self._call_ids = itertools.count(1)
        self._registry = Registry()
        self._finalizer = weakref.finalize(self, self._registry.kill_all)
        self._workers: set[WorkerHandle] = set()
        self._idle: asyncio.Queue[WorkerHandle | None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start_lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._started = False
        self._closed = False
        self._broken: str | None = None
        self._policy_cache: OrderedDict[tuple[str, str], tuple[PolicyViolation, ...]] = (
            OrderedDict()
        )
        self._config: dict[str, Any] = {
            **self._limits.to_config(),
            "allowed_imports": sorted(ALLOWED_IMPORTS),
            "allowed_submodules": sorted(ALLOWED_SUBMODULES),
            "denied_members": {k: sorted(v) for k, v in DENIED_MODULE_MEMBERS.items()},
            "safe_builtins": sorted(SAFE_BUILTINS - {"None", "True", "False"}),
            "python_layers": bool(_python_layers),
            "preload": list(_preload),
        }

    @property
    def limits(self) -> SandboxLimits:
        """The limits applied to every call."""
        return self._limits

    @property
    def isolation(self) -> str:
        """``"strong"`` (OS confinement) or ``"weak"`` (Python-level layers only)."""
        return self._isolation

    @property
    def workers(self) -> int:
        """The configured number of worker processes."""
        return self._size

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring and tests)."""
        return sorted(self._registry.processes)

    async def __aenter__(self) -> SandboxPool:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start the worker processes (called by ``async with`` and the first call)."""
        if self._closed:
            raise UsageError("this SandboxPool is closed; create a new one")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._start_lock = asyncio.Lock()
            self._idle = asyncio.Queue()
        elif self._loop is not loop:
            raise UsageError(
                "this SandboxPool belongs to another event loop",
                hint="create one pool per event loop (asyncio.run)",
            )
        assert self._start_lock is not None and self._idle is not None
        async with self._start_lock:
            if self._started:
                return
            if self._isolation == "weak":
                _LOG.warning("sandbox: WEAK isolation (%s=weak): %s", ISOLATION_ENV, WEAK_LOSS)
            elif not sys.platform.startswith("linux"):
                raise unavailable(f"OS isolation needs Linux; this is {sys.platform}")
            spawned = await asyncio.gather(
                *(self._spawn() for _ in range(self._size)), return_exceptions=True
            )
            errors = [item for item in spawned if isinstance(item, BaseException)]
            for item in spawned:
                if isinstance(item, WorkerHandle):
                    if errors:
                        await item.dispose(self._registry, graceful=False)
                    else:
                        self._workers.add(item)
                        self._idle.put_nowait(item)
            refused = [e for e in errors if isinstance(e, SandboxError)
                       and e.rule == "isolation-unavailable"]  # fmt: skip
            if refused:
                raise refused[0]
            if errors:
                raise SandboxError(
                    f"could not start the sandbox workers: {errors[0]}",
                    rule="worker-crashed",
                    hint=f"check that {self._python} runs",
                ) from errors[0]
            self._started = True

    async def _spawn(self) -> WorkerHandle:
        return await WorkerHandle.start(
            python=self._python,
            config=self._config,
            isolation=self._isolation,
            registry=self._registry,
            timeout=self._start_timeout,
        )

    def check(self, code: str, *, entry: str = "run") -> tuple[PolicyViolation, ...]:
        """Policy-check ``code`` (cached per code hash and entry)."""
        key = (hashlib.sha256(code.encode()).hexdigest(), entry)
        cached = self._policy_cache.get(key)
        if cached is None:
            cached = tuple(check_source(code, entry=entry))
            self._policy_cache[key] = cached
            while len(self._policy_cache) > _POLICY_CACHE_SIZE:
                self._policy_cache.popitem(last=False)
        return cached

    async def call(
        self,
        code: str,
        kwargs: Mapping[str, Any],
        *,
        entry: str = "run",
        timeout_s: float | None = None,
    ) -> Any:
        """Run ``entry(**kwargs)`` from ``code`` in a worker and return its result.

        Args:
            code: Python source defining ``entry`` (untrusted).
            kwargs: JSON-serialisable keyword arguments.
            entry: The function to call.
            timeout_s: Wall-clock timeout (default: ``limits.wall_timeout_s``); values above
                :data:`~sgde.runtime.sandbox.limits.MAX_TIMEOUT_S` are lowered to it.

        Returns:
            The JSON-decoded return value.

        Raises:
            SandboxError: ``policy:<rule>`` when the policy refuses the code (``line`` set);
                ``timeout``, ``cpu-limit``, ``memory-limit``, ``runtime-error`` (exception
                type, message and line), ``output-too-large``, ``not-json``,
                ``forbidden-operation`` or ``worker-crashed`` otherwise.
            UsageError: The pool is closed or used from another event loop.
        """
        if not isinstance(code, str):
            raise UsageError(f"code must be a str, got {type(code).__name__}")
        violations = self.check(code, entry=entry)
        if violations:
            raise policy_error(violations)
        return await self._call_unchecked(code, kwargs, entry=entry, timeout_s=timeout_s)

    async def _call_unchecked(
        self,
        code: str,
        kwargs: Mapping[str, Any],
        *,
        entry: str = "run",
        timeout_s: float | None = None,
    ) -> Any:
        """Run code without the policy check (tests of the run-time layers only)."""
        try:
            kwargs_json = json.dumps(dict(kwargs), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise SandboxError(
                f"the arguments are not JSON-serialisable: {exc}", rule="not-json"
            ) from None
        if not self._started:
            await self.start()
        elif asyncio.get_running_loop() is not self._loop:
            raise UsageError("this SandboxPool belongs to another event loop")
        timeout = self._limits.wall_timeout_s if timeout_s is None else timeout_s
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
            raise UsageError(f"timeout_s must be a finite positive number, got {timeout_s!r}")
        timeout = min(float(timeout), MAX_TIMEOUT_S)  # the cap: no call runs longer
        call_id = next(self._call_ids)
        request = frame(
            {
                "op": "call",
                "id": call_id,
                "timeout_s": float(timeout),
                "key": hashlib.sha256(code.encode()).hexdigest(),
                "code": code,
                "entry": entry,
                "kwargs": kwargs_json,
            }
        )
        worker = await self._acquire()
        answered = False
        try:
            response = await worker.request(
                request,
                call_id=call_id,
                timeout=timeout,
                max_bytes=self._limits.max_output_bytes + _FRAME_OVERHEAD,
            )
            answered = True
        finally:
            worker.calls += 1
            if answered and worker.calls < self._max_calls and not self._closed:
                assert self._idle is not None
                self._idle.put_nowait(worker)
            else:
                self._replace(worker, graceful=answered)
        return _result(response)

    async def _acquire(self) -> WorkerHandle:
        if self._closed:
            raise UsageError("this SandboxPool is closed; create a new one")
        assert self._idle is not None
        while True:
            worker = await self._idle.get()
            if worker is None:
                self._idle.put_nowait(None)
                raise SandboxError(
                    f"the sandbox pool cannot start workers: {self._broken}", rule="worker-crashed"
                )
            if worker.process.poll() is None:
                return worker
            # Died while idle (killed from outside, out of memory): no call was sent to it, so
            # replace it and take the next worker instead of failing a call that never ran.
            self._replace(worker, graceful=False)

    def _replace(self, worker: WorkerHandle, *, graceful: bool) -> None:
        if not graceful:
            kill_worker(worker.process)
        task = asyncio.get_running_loop().create_task(self._replace_task(worker))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replace_task(self, old: WorkerHandle) -> None:
        self._workers.discard(old)
        await old.dispose(self._registry, graceful=True)
        if self._closed:
            return
        last: BaseException | None = None
        for attempt in range(3):
            try:
                new = await self._spawn()
            except Exception as exc:
                last = exc
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            if self._closed:
                await new.dispose(self._registry, graceful=False)
                return
            self._workers.add(new)
            assert self._idle is not None
            self._idle.put_nowait(new)
            return
        self._broken = str(last)
        assert self._idle is not None
        self._idle.put_nowait(None)

    async def aclose(self) -> None:
        """Stop every worker, reap it and remove its directory. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        workers = list(self._workers)
        self._workers.clear()
        await asyncio.gather(
            *(w.dispose(self._registry, graceful=True) for w in workers),
            return_exceptions=True,
        )
        self._registry.kill_all()
        self._finalizer.detach()


def _result(response: Mapping[str, Any]) -> Any:
    if response.get("ok") is True and "result" in response:
        return response["result"]
    rule = response.get("rule")
    message = response.get("message")
    line = response.get("line")
    if (
        rule not in _RUNTIME_RULES
        or not isinstance(message, str)
        or not (line is None or isinstance(line, int))
    ):
        raise SandboxError("the worker sent a malformed response", rule="worker-crashed")
    stdout = response.get("stdout")
    if isinstance(stdout, str) and stdout:
        message += f"\nprinted output:\n{stdout[:2000]}"
    hint = REPAIR_HINT if rule in ("runtime-error", "not-json") else None
    raise SandboxError(message, rule=str(rule), line=line, hint=hint)


def policy_error(violations: Sequence[PolicyViolation]) -> SandboxError:
    """The error for code the policy refuses: rule ``policy:<first rule>``, every violation
    listed (up to 20), ``line`` of the first.

    Args:
        violations: What :func:`sgde.runtime.sandbox.policy.check_source` found (not empty).
    """
    first = violations[0]
    listing = "\n".join("  " + v.format() for v in violations[:20])
    return SandboxError(
        f"the sandbox policy refuses the code:\n{listing}",
        rule=f"policy:{first.rule}",
        line=first.line,
        hint="rewrite the code within the sandbox rules (docs/sandbox.md)",
    )


def run_code_sync(
    code: str,
    kwargs: Mapping[str, Any] | None = None,
    *,
    entry: str = "run",
    limits: SandboxLimits | None = None,
    timeout_s: float | None = None,
) -> Any:
    """Run one sandboxed call from synchronous code (scripts, notebooks without a loop).

    Starts a one-worker pool, makes the call and shuts the pool down (about 0.1-0.3 s of
    start-up). Use :class:`SandboxPool` for repeated calls.

    Raises:
        SandboxError: As :meth:`SandboxPool.call`.
        UsageError: When called from a running event loop.
    """

    async def _run() -> Any:
        async with SandboxPool(workers=1, limits=limits) as pool:
            return await pool.call(code, kwargs or {}, entry=entry, timeout_s=timeout_s)

    return run_sync(
        _run(),
        name="run_code_sync",
        use_instead="pool.call(...) inside `async with SandboxPool() as pool`",
    )
