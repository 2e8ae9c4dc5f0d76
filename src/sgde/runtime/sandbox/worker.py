"""The sandbox worker process: runs untrusted code-node functions.

Started by :mod:`sgde.runtime.sandbox.pool` as ``python -I -S -B worker.py`` with an empty
environment in an empty directory. It imports nothing from sgde (only the standard
library), so it can run without the package on ``sys.path``.

Protocol: frames of a 4-byte big-endian length followed by UTF-8 JSON. The worker moves the
channel off fds 0/1 at start-up (to private fds) and points fds 0/1 at ``/dev/null``, and
``sys.stdout``/``sys.stderr`` to a bounded in-memory sink, so nothing user code prints can
reach the channel. The first frame is the configuration; the worker then imports the allowed
modules, locks itself down (rlimits, uid, audit hook) and answers ``{"ready": true}``.
Each further frame is a call::

    {"op": "call", "key": "<sha256>", "code": "...", "entry": "run", "kwargs": "<json>"}

answered by ``{"ok": true, "result": <json>, "retire": bool}`` or
``{"ok": false, "rule": ..., "message": ..., "line": ..., "stdout": ..., "retire": bool}``.
"""

from __future__ import annotations

import builtins
import contextlib
import decimal
import importlib
import json
import os
import resource
import signal
import struct
import sys
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

_HEADER = struct.Struct(">I")
_FILENAME = "<sandbox>"
_MAX_REQUEST_BYTES = 256 * 1024 * 1024
_MAX_MESSAGE_CHARS = 4000
_STDOUT_KEEP = 4096
_CACHE_SIZE = 64
_NOBODY = 65534

# Audit events that are refused once the worker is locked down (prefix match).
_BLOCKED_PREFIXES = (
    "open",
    "os.",
    "subprocess.",
    "socket.",
    "ctypes.",
    "shutil.",
    "pty.",
    "fcntl.",
    "mmap.",
    "resource.",
    "signal.",
    "syslog.",
    "sqlite3.",
    "urllib.",
    "http.",
    "ftplib.",
    "smtplib.",
    "poplib.",
    "imaplib.",
    "nntplib.",
    "telnetlib.",
    "webbrowser.",
    "gc.",
    "marshal.",
    "pickle.",
    "code.__new__",
    "function.__new__",
    "sys.addaudithook",
    "sys._current_frames",
    "sys.settrace",
    "sys.setprofile",
    "sys.set_asyncgen_hooks",
    "cpython.",
    "builtins.input",
    "_thread.",
    "threading.",
    "tempfile.",
    "glob.",
    "winreg.",
    "msvcrt.",
    "_winapi.",
)
# Modules that C code of the allowed modules imports at call time (``PyImport_Import``
# calls ``__import__`` from the caller's builtins but then takes the module from
# ``sys.modules``); the guarded import answers those with None.
_IMPLEMENTATION_MODULES = frozenset(
    {"time", "_strptime", "json.decoder", "json.encoder", "json.scanner", "locale",
     "calendar", "unicodedata", "_datetime", "_decimal", "numbers", "operator", "copyreg"}
)  # fmt: skip

# Imported inside functions of the allowed modules (e.g. Counter.most_common -> heapq);
# loaded before lock-down because new module loads are refused afterwards.
_PRELOAD = ("heapq", "copy", "unicodedata", "_statistics", "_strptime", "locale", "calendar")


class SandboxViolation(RuntimeError):
    """Raised inside the worker when sandboxed code attempts a blocked operation."""


class _Guard:
    """State shared by the audit hook and the call loop (unreachable from user code)."""

    def __init__(self) -> None:
        self.locked = False
        self.active = False
        self.violation: str | None = None

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.locked or event in ("exec", "compile", "sys._getframe"):
            return
        if event == "import":
            raise ImportError(f"module {args[0]!r} is not available in the sandbox")
        if event.startswith(_BLOCKED_PREFIXES) or (
            self.active and event.startswith(("object.__getattr__", "object.__delattr__"))
        ):
            if self.violation is None:
                self.violation = event
            raise SandboxViolation(f"operation '{event}' is not allowed in the sandbox")


class _Sink:
    """A bounded text sink for ``sys.stdout`` / ``sys.stderr``."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError("write() argument must be str")
        room = _STDOUT_KEEP - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def flush(self) -> None:
        return None

    def reset(self) -> None:
        self.parts.clear()
        self.kept = 0
        self.dropped = 0

    def text(self) -> str:
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n... ({self.dropped} more characters dropped)"
        return out


class _Channel:
    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd

    def _read_exact(self, n: int) -> bytes | None:
        chunks: list[bytes] = []
        while n:
            chunk = os.read(self.read_fd, min(n, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def read(self) -> dict[str, Any] | None:
        header = self._read_exact(_HEADER.size)
        if header is None:
            return None
        (size,) = _HEADER.unpack(header)
        if size > _MAX_REQUEST_BYTES:
            return None
        body = self._read_exact(size)
        if body is None:
            return None
        message = json.loads(body)
        return message if isinstance(message, dict) else None

    def write(self, payload: bytes) -> None:
        view = memoryview(_HEADER.pack(len(payload)) + payload)
        while view:
            written = os.write(self.write_fd, view)
            view = view[written:]


def _error(rule: str, message: str, line: int | None = None, **extra: Any) -> dict[str, Any]:
    if len(message) > _MAX_MESSAGE_CHARS:
        message = message[:_MAX_MESSAGE_CHARS] + " ...(truncated)"
    return {"ok": False, "rule": rule, "message": message, "line": line, **extra}


def _safe_str(value: object) -> str:
    try:
        text = str(value)
    except Exception:
        return "<unprintable>"
    return text if len(text) <= 1000 else text[:1000] + "...(truncated)"


def _one_arg_type(obj: object, /) -> type:
    """``type(obj)``; the three-argument form (class creation) is not available."""
    return type(obj)


def _no_classes(*args: object, **kwargs: object) -> None:
    raise TypeError("class definitions are not available in the sandbox")


class _Runner:
    """Compiles, caches and calls sandboxed functions."""

    def __init__(self, config: Mapping[str, Any], guard: _Guard, sink: _Sink) -> None:
        self.guard = guard
        self.sink = sink
        self.cpu_seconds = float(config["cpu_seconds"])
        self.max_output = int(config["max_output_bytes"])
        self.memory_bytes = int(config["memory_bytes"])
        self.worker_cpu = int(config["worker_cpu_seconds"])
        # Linux carries ru_maxrss over fork + exec: a worker started by a big parent (a
        # process holding a loaded model) starts with the parent's peak. Only a peak above
        # that inherited one is the worker's own.
        self.inherited_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.allowed = frozenset(config["allowed_imports"]) | frozenset(
            config["allowed_submodules"]
        )
        self.denied: dict[str, frozenset[str]] = {
            name: frozenset(members) for name, members in config["denied_members"].items()
        }
        self.builtin_names = tuple(config["safe_builtins"])
        self.modules: dict[str, types.ModuleType] = {
            name: importlib.import_module(name) for name in sorted(self.allowed)
        }
        self.cache: OrderedDict[str, tuple[Callable[..., Any], list[str]]] = OrderedDict()
        self.base_context = decimal.Context(
            prec=28,
            rounding=decimal.ROUND_HALF_EVEN,
            Emin=-999999,
            Emax=999999,
            capitals=1,
            clamp=0,
            flags=[],
            traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
        )

    # -- namespaces -------------------------------------------------------------------------

    def _view(self, name: str) -> types.ModuleType:
        real = self.modules[name]
        view = types.ModuleType(name, real.__doc__)
        denied = self.denied.get(name, frozenset())
        for attr, value in vars(real).items():
            if attr.startswith("_") or attr in denied or isinstance(value, types.ModuleType):
                continue
            setattr(view, attr, value)
        return view

    def _namespace(self) -> dict[str, Any]:
        views: dict[str, types.ModuleType] = {}

        def view(name: str) -> types.ModuleType:
            if name not in views:
                views[name] = self._view(name)
                parent, _, child = name.rpartition(".")
                if parent:
                    setattr(view(parent), child, views[name])
            return views[name]

        def guarded_import(
            name: str,
            globals: Mapping[str, Any] | None = None,
            locals: Mapping[str, Any] | None = None,
            fromlist: tuple[str, ...] | list[str] | None = (),
            level: int = 0,
        ) -> types.ModuleType | None:
            if level:
                raise ImportError("relative imports are not allowed in the sandbox")
            if name in self.allowed:
                module = view(name)
                return module if fromlist else view(name.partition(".")[0])
            if name in _IMPLEMENTATION_MODULES and name in sys.modules:
                return None
            raise ImportError(
                f"import of {name!r} is not allowed; allowed: {', '.join(sorted(self.allowed))}"
            )

        safe: dict[str, Any] = {name: getattr(builtins, name) for name in self.builtin_names}
        safe["type"] = _one_arg_type
        safe["__import__"] = guarded_import
        safe["__build_class__"] = _no_classes
        return {"__builtins__": safe, "__name__": "sandbox"}

    def _load(self, key: str, code: str, entry: str) -> tuple[Callable[..., Any], list[str]]:
        cache_key = f"{key}:{entry}"
        cached = self.cache.get(cache_key)
        if cached is not None:
            self.cache.move_to_end(cache_key)
            return cached
        compiled = compile(code, _FILENAME, "exec", dont_inherit=True)
        namespace = self._namespace()
        exec(compiled, namespace)
        function = namespace.get(entry)
        if not callable(function):
            raise NameError(f"the code defines no function '{entry}'")
        loaded = (function, code.splitlines())
        self.cache[cache_key] = loaded
        while len(self.cache) > _CACHE_SIZE:
            self.cache.popitem(last=False)
        return loaded

    # -- calls ------------------------------------------------------------------------------

    def call(self, message: Mapping[str, Any]) -> tuple[bytes, bool]:
        """Run one call; returns the response frame and whether the worker must retire."""
        code = str(message["code"])
        entry = str(message.get("entry", "run"))
        kwargs = json.loads(message["kwargs"])
        if not isinstance(kwargs, dict):
            kwargs = {}
        self.sink.reset()
        decimal.setcontext(self.base_context.copy())
        self.guard.violation = None
        lines: list[str] = code.splitlines()
        response: dict[str, Any] = {}
        payload: bytes | None = None
        failure: BaseException | None = None
        signal.setitimer(signal.ITIMER_PROF, self.cpu_seconds)
        self.guard.active = True
        try:
            try:
                function, lines = self._load(str(message["key"]), code, entry)
                result = function(**kwargs)
            except MemoryError:
                response = _error("memory-limit", "the code ran out of memory", retire=True)
            except BaseException as exc:
                failure = exc
            else:
                response, payload = self._serialise(result)
                del result
        finally:
            self.guard.active = False
            signal.setitimer(signal.ITIMER_PROF, 0)
        if failure is not None:
            response = self._runtime_error(failure, lines, entry)
            failure = None
        if self.guard.violation is not None:
            response = _error(
                "forbidden-operation",
                f"the code attempted '{self.guard.violation}', which the sandbox blocks",
                retire=True,
            )
            payload = None
        usage = resource.getrusage(resource.RUSAGE_SELF)
        bloated = usage.ru_maxrss > self.inherited_maxrss and (
            usage.ru_maxrss * 1024 > self.memory_bytes // 2
        )
        retire = bool(response.get("retire")) or (
            bloated or usage.ru_utime + usage.ru_stime > self.worker_cpu - 2 * self.cpu_seconds - 1
        )
        if payload is not None:
            flag = b"true" if retire else b"false"
            return b'{"ok":true,"retire":' + flag + b',"result":' + payload + b"}", retire
        response["retire"] = retire
        stdout = self.sink.text()
        if stdout:
            response["stdout"] = stdout
        return json.dumps(response).encode(), retire

    def _serialise(self, result: Any) -> tuple[dict[str, Any], bytes | None]:
        try:
            text = json.dumps(result, allow_nan=False, separators=(",", ":"))
        except MemoryError:
            return _error(
                "memory-limit", "ran out of memory encoding the result", retire=True
            ), None
        except (TypeError, ValueError, RecursionError) as exc:
            where = _find_non_json(result)
            return (
                _error(
                    "not-json",
                    f"the result is not JSON-serialisable ({type(exc).__name__}: "
                    f"{_safe_str(exc)}){where}; return only dict/list/str/int/float/bool/None "
                    "(convert sets to sorted lists, Decimal/Fraction to float or str, "
                    "NaN/inf to None)",
                ),
                None,
            )
        payload = text.encode()
        if len(payload) > self.max_output:
            return (
                _error(
                    "output-too-large",
                    f"the result is {len(payload)} bytes of JSON; the limit is "
                    f"{self.max_output} bytes",
                ),
                None,
            )
        return {"ok": True}, payload

    def _runtime_error(self, exc: BaseException, lines: list[str], entry: str) -> dict[str, Any]:
        frames: list[tuple[int, str]] = []
        if isinstance(exc, SyntaxError) and exc.filename == _FILENAME and exc.lineno:
            frames.append((exc.lineno, "<module>"))
        tb = exc.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            if code.co_filename == _FILENAME:
                frames.append((tb.tb_lineno, code.co_name))
            tb = tb.tb_next
        kind = type(exc).__name__
        text = f"{kind}: {_safe_str(exc)}"
        if isinstance(exc, TypeError) and not frames and f"{entry}()" in text:
            text += f" (check the parameters of '{entry}' against the inputs passed)"
        if not frames:
            return _error("runtime-error", text)
        shown = frames if len(frames) <= 8 else [*frames[:3], (-1, ""), *frames[-5:]]
        rendered = []
        for line, name in shown:
            if line < 0:
                rendered.append(f"  ... {len(frames) - 8} more frames")
                continue
            source = lines[line - 1].strip() if 0 < line <= len(lines) else ""
            rendered.append(f"  line {line}, in {name}: {source}")
        message = f"{text}\nTraceback (sandboxed code, most recent call last):\n" + "\n".join(
            rendered
        )
        return _error("runtime-error", message, frames[-1][0])


def _find_non_json(value: Any) -> str:
    """Describe where the first non-JSON value in ``value`` is (bounded search)."""
    stack: list[tuple[Any, str]] = [(value, "result")]
    seen = 0
    while stack and seen < 10_000:
        item, path = stack.pop()
        seen += 1
        if item is None or isinstance(item, (str, bool, int)):
            continue
        if isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                return f" at {path} ({item!r})"
            continue
        if isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, (str, int, float, bool)) and key is not None:
                    return f" at {path} (key of type {type(key).__name__})"
                stack.append((sub, f"{path}[{key!r}]"))
            continue
        if isinstance(item, (list, tuple)):
            stack.extend((sub, f"{path}[{i}]") for i, sub in enumerate(item))
            continue
        return f" at {path} (type {type(item).__name__})"
    return ""


def _warm_up(runner: _Runner) -> None:
    """Trigger the lazy imports of the allowed modules before imports are blocked."""
    for name in _PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    modules = runner.modules
    modules["datetime"].datetime.strptime("2000-01-02", "%Y-%m-%d")
    modules["datetime"].date(2000, 1, 2).strftime("%Y %B %A")
    with contextlib.suppress(ValueError):
        modules["json"].loads("{")
    modules["statistics"].mean([1, 2, 3])
    modules["fractions"].Fraction("1/3")
    modules["collections"].namedtuple("Warm", "a b")(1, 2)
    modules["collections"].Counter("aab").most_common(1)
    modules["re"].compile(r"\N{LATIN SMALL LETTER A}")
    modules["re"].compile(r"(\d+)\s*[a-z]+").findall("12 ab")
    for encoding in ("utf-8", "utf-8-sig", "utf-16", "utf-32", "latin-1", "ascii", "cp1252"):
        "x".encode(encoding).decode(encoding)
    f"{1234567.891:,.2f} {decimal.Decimal('1.5'):.1f} {0.5:%}"


def _lock_down(config: Mapping[str, Any], channel: _Channel, guard: _Guard) -> None:
    limit = resource.setrlimit
    limit(resource.RLIMIT_CORE, (0, 0))
    limit(resource.RLIMIT_FSIZE, (0, 0))
    limit(resource.RLIMIT_NPROC, (0, 0))
    cpu = int(config["worker_cpu_seconds"])
    limit(resource.RLIMIT_CPU, (cpu, cpu))
    memory = int(config["memory_bytes"])
    limit(resource.RLIMIT_AS, (memory, memory))
    highest = max(channel.read_fd, channel.write_fd, 2)
    limit(resource.RLIMIT_NOFILE, (highest + 1, highest + 1))
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(_NOBODY)
        os.setuid(_NOBODY)
    sys.setrecursionlimit(int(config["recursion_limit"]))
    sys.addaudithook(guard.hook)
    guard.locked = True


def main() -> int:
    """Run the worker loop until the parent closes the channel or sends ``exit``."""
    read_fd = os.dup(0)
    write_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    channel = _Channel(read_fd, write_fd)
    guard = _Guard()
    sink = _Sink()
    sys.stdout = sink
    sys.stderr = sink
    sys.stdin = None
    warnings.simplefilter("ignore")
    config = channel.read()
    if config is None:
        return 0
    runner = _Runner(config, guard, sink)
    _warm_up(runner)
    _lock_down(config, channel, guard)
    channel.write(json.dumps({"ok": True, "ready": True, "pid": os.getpid()}).encode())
    while True:
        message = channel.read()
        if message is None or message.get("op") != "call":
            return 0
        response, retire = runner.call(message)
        channel.write(response)
        if retire:
            return 0


if __name__ == "__main__":
    sys.exit(main())
