"""The sandbox worker process: a confined zygote that forks one process per call.

Started by :mod:`sgde.runtime.sandbox.pool` as ``python -I -S -B worker.py <isolation>
<parent pid>`` with an empty environment. It imports only the standard library and its two
sibling modules (:mod:`confine`, :mod:`runner`), so it runs without sgde on ``sys.path``.

Start-up (trusted code; no untrusted byte has been read yet):

1. Move the channel off fds 0/1 (to private fds), point fds 0/1 at ``/dev/null``; ask for
   SIGKILL when the parent dies and check the parent is still the pool.
2. Read the configuration frame (from the pool).
3. ``strong`` isolation: unshare user (unless root), mount, network, pid, ipc, uts and
   cgroup namespaces and fork; the child — the *zygote* — is pid 1 of the new pid
   namespace, the first process only waits for it. ``weak``: the process is the zygote.
4. The zygote imports and warms up the allowed modules, then (``strong``) replaces its root
   with an empty read-only tmpfs, switches to a uid of its own when root, drops every
   capability, sets ``no_new_privs`` and non-dumpable, sets rlimits and loads a seccomp
   filter; then it answers ``{"ready": true}``.

Each call frame (JSON ``{"op": "call", "id": n, "code", "entry", "kwargs", "timeout_s"}``)
is served by a *fresh fork* of the zygote: the call process closes the channel, loads a
stricter seccomp filter (no processes, threads or signals), arms its CPU timer, runs the
code, writes its response to a pipe private to this call and exits. The zygote waits for it
(killing it at the wall-clock timeout) and sends the response framed with the call's id:
``>IQ`` (body length, call id) + JSON body. Untrusted code never holds the channel, and no
state of one call survives into another.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import math
import os
import resource
import select
import signal
import struct
import sys
import time
import warnings
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any


def _sibling(name: str) -> ModuleType:
    """Load a sibling module by path (``python -I`` puts no script directory on sys.path,
    and sgde itself is not importable in the worker)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"sgde_sandbox_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


if TYPE_CHECKING or __package__:
    from sgde.runtime.sandbox import confine, runner
else:  # run as a script by the pool
    confine = _sibling("confine")
    runner = _sibling("runner")

_REQUEST = struct.Struct(">I")
_RESPONSE = struct.Struct(">IQ")
_LENGTH = struct.Struct(">Q")
_ANSWER = struct.Struct(">QB")  # body length, 1 when the call process exits after it
_MAX_CALLS_PER_PROCESS = 256
_WARM_PROCESSES = 8
_EXIT_GRACE_S = 5.0
_CPU_BUDGET_CALLS = 10  # a call process retires after this many calls' worth of CPU
_MAX_REQUEST_BYTES = 256 * 1024 * 1024
_NOBODY = 65534
_RESPONSE_SLACK = 64 * 1024
_EXIT_UNAVAILABLE = 3
_SAMPLE = """\
import math, json, re
def run(a, b):
    words = re.findall(r"\\w+", "a b c")
    return {"h": math.hypot(a, b), "w": words, "j": json.dumps([a, b]), "s": f"{a:.2f}"}
"""


class Channel:
    """The framed pipe pair to the pool."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd

    def read(self) -> dict[str, Any] | None:
        header = _read_exact(self.read_fd, _REQUEST.size)
        if header is None:
            return None
        (size,) = _REQUEST.unpack(header)
        if size > _MAX_REQUEST_BYTES:
            return None
        body = _read_exact(self.read_fd, size)
        if body is None:
            return None
        message = json.loads(body)
        return message if isinstance(message, dict) else None

    def readable(self, until: float) -> bool:
        """Whether a request arrives before the monotonic time ``until``."""
        left = max(0.0, until - time.monotonic())
        return bool(select.select([self.read_fd], [], [], left)[0])

    def write(self, call_id: int, body: bytes) -> None:
        _write_all(self.write_fd, _RESPONSE.pack(len(body), call_id) + body)

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def _body(rule: str, message: str) -> bytes:
    return json.dumps(runner.error_body(rule, message)).encode()


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


class Zygote:
    """Serves calls in processes forked from itself: one per code, never shared."""

    def __init__(self, config: Mapping[str, Any], channel: Channel, strong: bool) -> None:
        self.config = config
        self.channel = channel
        self.strong = strong
        self.cpu_seconds = float(config["cpu_seconds"])
        self.cpu_budget = _CPU_BUDGET_CALLS * self.cpu_seconds
        self.max_body = int(config["max_output_bytes"]) + _RESPONSE_SLACK
        self.guard = runner.Guard()
        self.sink = runner.Sink()
        sys.stdout = self.sink
        sys.stderr = self.sink
        self.runner = runner.Runner(config, self.guard, self.sink)
        runner.warm_up(self.runner)
        self.child_filter: Any = None
        self.spare: CallProcess | None = None
        self.warm: OrderedDict[str, CallProcess] = OrderedDict()
        self.exiting: list[tuple[int, float]] = []

    def lock_down(self, *, as_root: bool) -> None:
        """Confine this process (after the imports, before any untrusted byte)."""
        if self.strong:
            confine.isolate_filesystem(os.path.dirname(os.path.abspath(__file__)))
            confine.drop_privileges(switch_uid=as_root)
        else:
            if as_root:
                os.setgroups([])
                os.setgid(_NOBODY)
                os.setuid(_NOBODY)
            if sys.platform.startswith("linux"):
                confine.set_non_dumpable()  # call processes cannot ptrace the zygote
        limit = resource.setrlimit
        limit(resource.RLIMIT_CORE, (0, 0))
        limit(resource.RLIMIT_FSIZE, (0, 0))
        memory = int(self.config["memory_bytes"])
        limit(resource.RLIMIT_AS, (memory, memory))
        cpu = int(self.config["worker_cpu_seconds"])
        limit(resource.RLIMIT_CPU, (cpu, cpu))
        if self.strong:
            # Compiled now (before any untrusted byte), loaded by every call process.
            self.child_filter = confine.SeccompFilter(confine.CHILD_DENIED, no_threads=True)
            confine.load_seccomp(confine.WORKER_DENIED)
        if self.runner.python_layers:
            sys.addaudithook(self.guard.hook)
        # Call processes then never run a collection over the zygote's objects, which would
        # copy every page holding one (about half the CPU of a call).
        gc.collect()
        gc.freeze()

    # -- one call -------------------------------------------------------------------------

    def serve(self, message: Mapping[str, Any]) -> bytes:
        """Run one call and return its response body.

        A call of code this worker ran recently goes to that code's own call process; other
        code gets the spare process (forked ahead), which then belongs to that code. Code
        never shares a process with different code.
        """
        timeout = float(message.get("timeout_s", 10.0))
        key = f"{message.get('key')}:{message.get('entry', 'run')}"
        request = json.dumps(message).encode()
        request = _LENGTH.pack(len(request)) + request
        proc = self.warm.pop(key, None)
        if proc is not None:
            try:
                _write_all(proc.request_fd, request)
            except BrokenPipeError:  # it exited (retired itself): use a fresh one
                self._retire(proc)
                proc = None
        if proc is None:
            proc = self._take_spare(request)
            if proc is None:
                return _body("worker-crashed", "the call process died before the call")
        body, finished, last = self._collect(proc, timeout)
        proc.calls += 1
        if finished:
            self._retire(proc, killed=True)
        elif last or proc.calls >= _MAX_CALLS_PER_PROCESS:
            self._retire(proc)
        else:
            self.warm[key] = proc
            while len(self.warm) > _WARM_PROCESSES:
                self._retire(self.warm.popitem(last=False)[1])
        return body

    def _take_spare(self, request: bytes) -> CallProcess | None:
        for _ in range(2):
            if self.spare is None:
                self.prepare()
            assert self.spare is not None
            proc, self.spare = self.spare, None
            try:
                _write_all(proc.request_fd, request)
                return proc
            except BrokenPipeError:  # the spare died while waiting: fork another
                self._retire(proc, killed=True)
        return None

    def _retire(self, proc: CallProcess, *, killed: bool = False) -> None:
        """Close a call process's pipes (it exits on EOF); reap it later."""
        for fd in (proc.request_fd, proc.result_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        if not killed:
            self.exiting.append((proc.pid, time.monotonic() + _EXIT_GRACE_S))

    def prepare(self) -> None:
        """Fork the process of the next new code now, so a call does not wait for the fork,
        the limits and the first-touch page faults of compiling and running code."""
        if self.spare is not None:
            return
        request_read, request_write = os.pipe()
        result_read, result_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the call process
            status = 1
            try:
                # Only its own pipes: the zygote also holds the pipes of other code's call
                # processes, and the channel.
                _close_fds_except(request_read, result_write)
                self._enter_call(max(request_read, result_write))
                self._prefault()
                self._call_loop(request_read, result_write)
                status = 0
            finally:
                os._exit(status)
        os.close(request_read)
        os.close(result_write)
        self.spare = CallProcess(pid, request_write, result_read)

    def _call_loop(self, request_fd: int, result_fd: int) -> None:
        """In the call process: serve calls of one code until EOF or retirement."""
        self.guard.locked = self.runner.python_layers
        while True:
            header = _read_exact(request_fd, _LENGTH.size)
            if header is None:
                return
            message = json.loads(_read_exact(request_fd, _LENGTH.unpack(header)[0]) or b"{}")
            signal.setitimer(signal.ITIMER_PROF, self.cpu_seconds)
            body = self.runner.call(message)
            usage = resource.getrusage(resource.RUSAGE_SELF)
            last = self.runner.tainted or usage.ru_utime + usage.ru_stime > self.cpu_budget
            _write_all(result_fd, _ANSWER.pack(len(body), last) + body)
            signal.setitimer(signal.ITIMER_PROF, 0)
            if last:
                return

    def _enter_call(self, highest_fd: int) -> None:
        """Set up the call process: no channel, own limits, stricter filter."""
        self.channel.close()
        os.dup2(0, 2)  # fd 0 is /dev/null (opened before the root was replaced)
        if sys.platform.startswith("linux"):
            confine.set_parent_death_signal()
        limit = resource.setrlimit
        limit(resource.RLIMIT_NPROC, (0, 0))
        # A call process retires once past its budget, and each call is held to
        # cpu_seconds by the timer: the rlimit is only a backstop.
        cpu = math.ceil(self.cpu_budget + self.cpu_seconds) + 2
        limit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        limit(resource.RLIMIT_NOFILE, (highest_fd + 1, highest_fd + 1))
        sys.setrecursionlimit(int(self.config["recursion_limit"]))
        if self.child_filter is not None:
            self.child_filter.load()

    def _prefault(self) -> None:
        """Compile and run a small sample once: the copy-on-write faults it takes are the
        ones a real call would otherwise take on its clock."""
        namespace = self.runner.fresh_namespace()
        exec(compile(_SAMPLE, runner.FILENAME, "exec", dont_inherit=True), namespace)
        json.dumps(namespace["run"](3, 4), allow_nan=False, separators=(",", ":"))

    def _collect(self, proc: CallProcess, timeout: float) -> tuple[bytes, bool, bool]:
        """Read one framed answer. Returns ``(body, finished, last)``: ``finished`` when the
        call process died or was killed (its status explains why), ``last`` when it said
        it exits after this answer."""
        deadline = time.monotonic() + timeout
        data = bytearray()
        need = _ANSWER.size
        verdict: bytes | None = None
        poller = select.poll()
        poller.register(proc.result_fd, select.POLLIN)
        while len(data) < need:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(max(1, int(left * 1000))):
                if time.monotonic() >= deadline:
                    verdict = _body(
                        "timeout",
                        f"the code did not finish within {timeout:g} s (wall clock); "
                        "it was stopped",
                    )
                    break
                continue
            chunk = os.read(proc.result_fd, min(1 << 20, need - len(data)))
            if not chunk:
                break
            data += chunk
            if len(data) == _ANSWER.size and need == _ANSWER.size:
                need += _ANSWER.unpack(data)[0]
                if need > self.max_body:
                    verdict = _body(
                        "output-too-large",
                        f"the call wrote more than {self.max_body} bytes of response",
                    )
                    break
        if verdict is None and len(data) == need and need > _ANSWER.size:
            return bytes(data[_ANSWER.size :]), False, bool(data[_LENGTH.size])
        if verdict is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
        status = self._reap(proc.pid, deadline if verdict is None else time.monotonic() + 5)
        if verdict is not None:
            return verdict, True, True
        if status is None:
            return (
                _body(
                    "timeout",
                    f"the code did not finish within {timeout:g} s (wall clock); it was stopped",
                ),
                True,
                True,
            )
        return _exit_verdict(status), True, True

    def reap_exiting(self) -> float | None:
        """Reap call processes that answered; SIGKILL those past their deadline (code
        that forged its own answer and kept running). Returns the next deadline, if any."""
        waiting = []
        for pid, deadline in self.exiting:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                continue
            if time.monotonic() >= deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                continue
            waiting.append((pid, deadline))
        self.exiting = waiting
        return min((deadline for _, deadline in waiting), default=None)

    @staticmethod
    def _reap(pid: int, deadline: float) -> int | None:
        """Wait for the call process; SIGKILL it at ``deadline``. Returns its status."""
        delay = 0.0002
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            if time.monotonic() >= deadline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                return None
            time.sleep(delay)
            delay = min(delay * 2, 0.01)


def _exit_verdict(status: int) -> bytes:
    """The response for a call process that died without a complete answer."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig in (signal.SIGPROF, signal.SIGXCPU):
            return _body("cpu-limit", "the code used up its CPU time limit")
        if sig == signal.SIGXFSZ:
            return _body("forbidden-operation", "the code tried to write to a file")
        if sig == signal.SIGSYS:
            return _body("forbidden-operation", "the code made a forbidden system call")
        return _body("worker-crashed", f"the call died from signal {_signal_name(sig)}")
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    return _body("worker-crashed", f"the call exited with status {code} without answering")


@dataclass
class CallProcess:
    """A process forked from the zygote that runs the calls of one code."""

    pid: int
    request_fd: int
    result_fd: int
    calls: int = 0


def _exit_now(signum: int, frame: object) -> None:
    os._exit(0)


def _parent_alive(fd: int) -> bool:
    """Whether the write end of the liveness pipe (held by the parent) is still open."""
    return not select.select([fd], [], [], 0)[0]


def _serve(channel: Channel, zygote: Zygote) -> int:
    zygote.prepare()
    while True:
        next_deadline = zygote.reap_exiting()
        while next_deadline is not None and not channel.readable(next_deadline):
            next_deadline = zygote.reap_exiting()
        message = channel.read()
        if message is None or message.get("op") != "call":
            return 0
        call_id = int(message.get("id", 0))
        channel.write(call_id, zygote.serve(message))
        zygote.prepare()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _close_fds_except(*keep: int) -> None:
    """Close every file descriptor above 2 except ``keep``."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    top = limit if limit != resource.RLIM_INFINITY and limit < 1 << 20 else 1 << 16
    low = 3
    for fd in sorted(set(keep)):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, top)


def _read_exact(fd: int, n: int) -> bytes | None:
    """Exactly ``n`` bytes, or None at end of file."""
    chunks: list[bytes] = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _unavailable(channel: Channel, reason: str) -> int:
    channel.write(0, _body("isolation-unavailable", reason))
    return _EXIT_UNAVAILABLE


def main(argv: list[str]) -> int:
    """Start (see the module docstring) and serve calls until the channel closes."""
    isolation = argv[1] if len(argv) > 1 else "weak"
    parent = int(argv[2]) if len(argv) > 2 else os.getppid()
    channel = Channel(os.dup(0), os.dup(1))
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    sys.stdin = None
    warnings.simplefilter("ignore")
    linux = sys.platform.startswith("linux")
    strong = isolation == "strong"
    try:
        if linux:
            confine.set_parent_death_signal()
    except confine.ConfinementUnavailable:
        pass
    if os.getppid() != parent:
        return 0  # the pool died before we set the death signal
    config = channel.read()
    if config is None:
        return 0
    as_root = os.geteuid() == 0
    if strong:
        if not linux:
            return _unavailable(channel, f"OS isolation needs Linux; this is {sys.platform}")
        try:
            confine.enter_namespaces()
        except confine.ConfinementUnavailable as exc:
            return _unavailable(channel, str(exc))
        alive_read, alive_write = os.pipe()
        pid = os.fork()
        if pid:  # stays outside: waits for the zygote (pid 1 of the new namespace)
            channel.close()
            os.close(alive_read)
            _, status = os.waitpid(pid, 0)
            return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
        os.close(alive_write)
        # Pid 1 ignores signals it has no handler for, even SIGKILL from the kernel.
        signal.signal(signal.SIGHUP, _exit_now)
        confine.set_parent_death_signal(signal.SIGHUP)
        if not _parent_alive(alive_read):
            return 0
    try:
        zygote = Zygote(config, channel, strong)
        zygote.lock_down(as_root=as_root)
    except (confine.ConfinementUnavailable, OSError) as exc:
        return _unavailable(channel, f"{type(exc).__name__}: {exc}")
    # Changing credentials cleared the death signal: set it again, then check the parent.
    if strong:
        confine.set_parent_death_signal(signal.SIGHUP)
        if not _parent_alive(alive_read):
            return 0
        os.close(alive_read)
    elif linux:
        confine.set_parent_death_signal()
        if os.getppid() != parent:
            return 0
    channel.write(
        0,
        json.dumps(
            {"ok": True, "ready": True, "isolation": isolation, "pid": os.getpid()}
        ).encode(),
    )
    return _serve(channel, zygote)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
