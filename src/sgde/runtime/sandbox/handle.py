"""Parent-side handles of sandbox worker processes: start, frames, death, isolation mode."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import struct
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgde.errors import SandboxError, UsageError

__all__ = [
    "ISOLATION_ENV",
    "REPAIR_HINT",
    "WEAK_LOSS",
    "frame",
    "kill_worker",
    "resolve_isolation",
    "unavailable",
]

ISOLATION_ENV = "SGDE_SANDBOX"
"""Environment variable choosing the isolation: ``strong`` (default) or ``weak``."""

_HEADER = struct.Struct(">I")
_RESPONSE = struct.Struct(">IQ")
_TIMEOUT_GRACE_S = 2.0
_WORKER_SCRIPT = Path(__file__).with_name("worker.py")
REPAIR_HINT = "fix the code and try again; see docs/sandbox.md for what sandboxed code may do"


WEAK_LOSS = (
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


def unavailable(reason: str) -> SandboxError:
    return SandboxError(
        "the sandbox's OS isolation (Linux namespaces + seccomp) is not available on this "
        f"host: {reason}. sgde refuses to run teacher-written code without it",
        rule="isolation-unavailable",
        hint="run sgde on Linux with user namespaces enabled (on Ubuntu 23.10+ AppArmor "
        "restricts them: sysctl kernel.apparmor_restrict_unprivileged_userns=0, or run as "
        "root) and libseccomp installed; or, "
        f"knowing that {WEAK_LOSS}, opt in with {ISOLATION_ENV}=weak (sgde --sandbox weak, "
        "SandboxPool(isolation='weak')); see docs/sandbox.md",
    )


@dataclass
class Registry:
    """Live worker processes, for the pool's finaliser."""

    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def forget(self, pid: int) -> None:
        self.processes.pop(pid, None)

    def kill_all(self) -> None:
        """Kill and reap every live worker (used when a pool is dropped without close)."""
        for pid, process in list(self.processes.items()):
            kill_worker(process)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=2)
            for stream in (process.stdin, process.stdout, process.stderr):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()
            self.forget(pid)


def kill_worker(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the worker's process group unless it was already reaped (no pid reuse)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def frame(message: Mapping[str, Any]) -> bytes:
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


class WorkerHandle:
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
        registry: Registry,
        timeout: float,
    ) -> WorkerHandle:
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
            worker.write_transport.write(frame(config))
            ready = await asyncio.wait_for(worker._read_frame(0, 1 << 20), timeout)
        except BaseException:
            await worker.dispose(registry, graceful=False)
            raise
        if ready is not None and ready.get("rule") == "isolation-unavailable":
            await worker.dispose(registry, graceful=False)
            raise unavailable(str(ready.get("message")))
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
            kill_worker(self.process)
            raise SandboxError(
                f"the code did not finish within {timeout:g} s (wall clock); the worker was killed",
                rule="timeout",
                hint="make the code faster (avoid unbounded loops) or raise the timeout",
            ) from None
        except SandboxError:
            kill_worker(self.process)
            raise
        except (ConnectionError, RuntimeError):
            response = None
        if response is None:
            for _ in range(200):
                if self.process.poll() is not None:
                    break
                await asyncio.sleep(0.01)
            rule, message = self._exit_reason()
            raise SandboxError(message, rule=rule, hint=REPAIR_HINT)
        return response

    async def dispose(self, registry: Registry, *, graceful: bool) -> None:
        """Stop the process (politely when ``graceful``) and reap it."""
        with contextlib.suppress(Exception):
            self.write_transport.close()
        if graceful:
            for _ in range(100):
                if self.process.poll() is not None:
                    break
                await asyncio.sleep(0.01)
        kill_worker(self.process)
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
