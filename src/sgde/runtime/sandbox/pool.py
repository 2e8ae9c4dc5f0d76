"""A pool of sandbox worker processes serving asyncio callers."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import math
import os
import signal
import struct
import subprocess
import sys
import weakref
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from sgde.errors import SandboxError, UsageError
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

ISOLATION_ENV = "SGDE_SANDBOX"
"""Environment variable choosing the isolation: ``strong`` (default) or ``weak``."""

_LOG = logging.getLogger("sgde.sandbox")
_HEADER = struct.Struct(">I")
_RESPONSE = struct.Struct(">IQ")
_TIMEOUT_GRACE_S = 2.0
_WORKER_SCRIPT = Path(__file__).with_name("worker.py")
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
_REPAIR_HINT = "fix the code and try again; see docs/sandbox.md for what sandboxed code may do"


_WEAK_LOSS = (
    "the weak sandbox has no OS isolation: teacher code is contained only by Python-level "
    "checks, and one bypass reaches the files, network and processes of the user running sgde"
)


def resolve_isolation(isolation: str | None = None) -> str:
    """The isolation to use: the argument, else ``$SGDE_SANDBOX``, else ``strong``.

    Raises:
        UsageError: Neither ``strong`` nor ``weak``.
    """
    value = isolation if isolation is not None else os.environ.get(ISOLATION_ENV, "strong")
    value = (value or "strong").strip().lower()
    if value not in ("strong", "weak"):
        raise UsageError(
            f"unknown sandbox isolation {value!r} (from "
            f"{'the isolation argument' if isolation is not None else ISOLATION_ENV})",
            hint=f"use 'strong' (default) or 'weak' (e.g. {ISOLATION_ENV}=weak)",
        )
    return value


def _unavailable(reason: str) -> SandboxError:
    return SandboxError(
        "the sandbox's OS isolation (Linux namespaces + seccomp) is not available on this "
        f"host: {reason}. sgde refuses to run teacher-written code without it",
        rule="isolation-unavailable",
        hint=f"run sgde on Linux with user namespaces enabled and libseccomp installed; or, "
        f"knowing that {_WEAK_LOSS}, opt in with {ISOLATION_ENV}=weak (or "
        "SandboxPool(isolation='weak')); see docs/sandbox.md",
    )


@dataclass
class _Registry:
    """Live worker processes, for the pool's finaliser."""

    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def forget(self, pid: int) -> None:
        self.processes.pop(pid, None)

    def kill_all(self) -> None:
        """Kill and reap every live worker (used when a pool is dropped without close)."""
        for pid, process in list(self.processes.items()):
            _kill(process)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=2)
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            self.forget(pid)


def _kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker's process group unless it was already reaped (no pid reuse)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def _frame(message: Mapping[str, Any]) -> bytes:
    """A request frame: 4-byte big-endian length, then UTF-8 JSON."""
    body = json.dumps(message, separators=(",", ":")).encode()
    return _HEADER.pack(len(body)) + body


def _describe_exit(returncode: int | None, stderr: str) -> tuple[str, str]:
    """Map how a worker died to a (rule, message) pair."""
    tail = stderr.strip()[-1500:]
    detail = f"; worker stderr: {tail}" if tail else ""
    if returncode is None:
        return "worker-crashed", "the worker stopped answering" + detail
    if returncode < 0:
        sig = -returncode
        if sig in (signal.SIGPROF, signal.SIGXCPU):
            return "cpu-limit", "the code used up its CPU time limit"
        if sig == signal.SIGXFSZ:
            return "forbidden-operation", "the code tried to write to a file"
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        if "MemoryError" in tail:
            return "memory-limit", f"the worker ran out of memory ({name}){detail}"
        return "worker-crashed", f"the worker died from signal {name}{detail}"
    if "MemoryError" in tail:
        return "memory-limit", "the worker ran out of memory" + detail
    return "worker-crashed", f"the worker exited with status {returncode}{detail}"


class _Worker:
    """Parent-side handle of one worker process."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        reader: asyncio.StreamReader,
        read_transport: asyncio.ReadTransport,
        write_transport: asyncio.WriteTransport,
    ) -> None:
        self.process = process
        self.reader = reader
        self.read_transport = read_transport
        self.write_transport = write_transport
        self.calls = 0
        self.isolation = ""

    @classmethod
    async def start(
        cls,
        *,
        python: str,
        config: Mapping[str, Any],
        isolation: str,
        registry: _Registry,
        timeout: float,
    ) -> _Worker:
        process = subprocess.Popen(
            [python, "-I", "-S", "-B", str(_WORKER_SCRIPT), isolation, str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={},
            cwd="/",
            start_new_session=True,
            close_fds=True,
        )
        registry.processes[process.pid] = process
        assert process.stdin is not None and process.stdout is not None
        assert process.stderr is not None
        os.set_blocking(process.stderr.fileno(), False)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), process.stdout
        )
        write_transport, _ = await loop.connect_write_pipe(asyncio.Protocol, process.stdin)
        worker = cls(process, reader, read_transport, write_transport)
        try:
            worker.write_transport.write(_frame(config))
            ready = await asyncio.wait_for(worker._read_frame(0, 1 << 20), timeout)
        except BaseException:
            await worker.dispose(registry, graceful=False)
            raise
        if ready is not None and ready.get("rule") == "isolation-unavailable":
            await worker.dispose(registry, graceful=False)
            raise _unavailable(str(ready.get("message")))
        if ready is None or ready.get("ready") is not True:
            rule, message = worker._exit_reason()
            await worker.dispose(registry, graceful=False)
            raise SandboxError(f"sandbox worker failed to start: {message}", rule=rule)
        worker.isolation = str(ready.get("isolation"))
        return worker

    async def _read_frame(self, call_id: int, max_bytes: int) -> dict[str, Any] | None:
        """The next frame (which must answer ``call_id``), or None when the channel closed."""
        try:
            header = await self.reader.readexactly(_RESPONSE.size)
            size, answered = _RESPONSE.unpack(header)
            if size > max_bytes:
                raise SandboxError(
                    f"the worker sent a {size}-byte frame (limit {max_bytes}); it was killed",
                    rule="worker-crashed",
                )
            body = await self.reader.readexactly(size)
        except asyncio.IncompleteReadError:
            return None
        if answered != call_id:
            raise SandboxError(
                f"the worker answered call {answered} instead of call {call_id}; it was killed",
                rule="worker-crashed",
            )
        try:
            message = json.loads(body)
        except (ValueError, RecursionError):
            message = None
        if not isinstance(message, dict):
            # The body comes from the call process: code that tampered with its own
            # serialiser. The frame itself (length, call id) came from the worker: keep it.
            return {
                "ok": False,
                "rule": "forbidden-operation",
                "message": "the call's response is not valid JSON (the code tampered with "
                "the sandbox's result encoding)",
                "line": None,
            }
        return message

    def _stderr(self) -> str:
        stream = self.process.stderr
        if stream is None:
            return ""
        try:
            data = os.read(stream.fileno(), 16384)
        except (BlockingIOError, OSError, ValueError):
            return ""
        return data.decode("utf-8", "replace")

    def _exit_reason(self) -> tuple[str, str]:
        return _describe_exit(self.process.poll(), self._stderr())

    async def request(
        self, frame: bytes, *, call_id: int, timeout: float, max_bytes: int
    ) -> dict[str, Any]:
        """Send one call and wait for its answer.

        The worker enforces ``timeout`` itself (it kills the call and answers ``timeout``);
        the pool waits a little longer and kills the whole worker if it does not answer.

        Raises:
            SandboxError: ``timeout`` or a rule describing how the worker died.
        """
        try:
            self.write_transport.write(frame)
            response = await asyncio.wait_for(
                self._read_frame(call_id, max_bytes), timeout + _TIMEOUT_GRACE_S
            )
        except asyncio.TimeoutError:
            _kill(self.process)
            raise SandboxError(
                f"the code did not finish within {timeout:g} s (wall clock); the worker was killed",
                rule="timeout",
                hint="make the code faster (avoid unbounded loops) or raise the timeout",
            ) from None
        except SandboxError:
            _kill(self.process)
            raise
        except (ConnectionError, RuntimeError):
            response = None
        if response is None:
            for _ in range(200):
                if self.process.poll() is not None:
                    break
                await asyncio.sleep(0.01)
            rule, message = self._exit_reason()
            raise SandboxError(message, rule=rule, hint=_REPAIR_HINT)
        return response

    async def dispose(self, registry: _Registry, *, graceful: bool) -> None:
        """Stop the process (politely when ``graceful``) and reap it."""
        with contextlib.suppress(Exception):
            self.write_transport.close()
        if graceful:
            for _ in range(100):
                if self.process.poll() is not None:
                    break
                await asyncio.sleep(0.01)
        _kill(self.process)
        for _ in range(500):
            if self.process.poll() is not None:
                break
            await asyncio.sleep(0.01)
        else:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
        with contextlib.suppress(Exception):
            self.read_transport.close()
        if self.process.stderr is not None:
            with contextlib.suppress(OSError):
                self.process.stderr.close()
        registry.forget(self.process.pid)


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
        self._registry = _Registry()
        self._finalizer = weakref.finalize(self, self._registry.kill_all)
        self._workers: set[_Worker] = set()
        self._idle: asyncio.Queue[_Worker | None] | None = None
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
                _LOG.warning("sandbox: WEAK isolation (%s=weak): %s", ISOLATION_ENV, _WEAK_LOSS)
            elif not sys.platform.startswith("linux"):
                raise _unavailable(f"OS isolation needs Linux; this is {sys.platform}")
            spawned = await asyncio.gather(
                *(self._spawn() for _ in range(self._size)), return_exceptions=True
            )
            errors = [item for item in spawned if isinstance(item, BaseException)]
            for item in spawned:
                if isinstance(item, _Worker):
                    if errors:
                        await item.dispose(self._registry, graceful=False)
                    else:
                        self._workers.add(item)
                        self._idle.put_nowait(item)
            unavailable = [e for e in errors if isinstance(e, SandboxError)
                           and e.rule == "isolation-unavailable"]  # fmt: skip
            if unavailable:
                raise unavailable[0]
            if errors:
                raise SandboxError(
                    f"could not start the sandbox workers: {errors[0]}",
                    rule="worker-crashed",
                    hint=f"check that {self._python} runs",
                ) from errors[0]
            self._started = True

    async def _spawn(self) -> _Worker:
        return await _Worker.start(
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
            timeout_s: Wall-clock timeout (default: ``limits.wall_timeout_s``).

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
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout)) or not (
            0 < timeout <= MAX_TIMEOUT_S
        ):
            raise UsageError(
                f"timeout_s must be a number in (0, {MAX_TIMEOUT_S:g}] seconds, got {timeout_s!r}"
            )
        call_id = next(self._call_ids)
        frame = _frame(
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
        keep = False
        answered = False
        try:
            response = await worker.request(
                frame,
                call_id=call_id,
                timeout=timeout,
                max_bytes=self._limits.max_output_bytes + _FRAME_OVERHEAD,
            )
            answered = True
            keep = True
        finally:
            worker.calls += 1
            if keep and worker.calls < self._max_calls and not self._closed:
                assert self._idle is not None
                self._idle.put_nowait(worker)
            else:
                self._replace(worker, graceful=answered)
        return _result(response)

    async def _acquire(self) -> _Worker:
        if self._closed:
            raise UsageError("this SandboxPool is closed; create a new one")
        assert self._idle is not None
        worker = await self._idle.get()
        if worker is None:
            self._idle.put_nowait(None)
            raise SandboxError(
                f"the sandbox pool cannot start workers: {self._broken}", rule="worker-crashed"
            )
        return worker

    def _replace(self, worker: _Worker, *, graceful: bool) -> None:
        if not graceful:
            _kill(worker.process)
        task = asyncio.get_running_loop().create_task(self._replace_task(worker))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replace_task(self, old: _Worker) -> None:
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
    hint = _REPAIR_HINT if rule in ("runtime-error", "not-json") else None
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

    Starts a one-worker pool, makes the call and shuts the pool down (about 50-100 ms of
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
