"""Runs one sandboxed call inside a forked call process (stdlib only).

Imported by the worker (:mod:`sgde.runtime.sandbox.worker`) as a plain module. The zygote
builds one :class:`Runner` before it reads any untrusted byte (imports and warms up the
allowed modules); every call then runs in a fresh fork of the zygote: ``Runner.call``
compiles the code, executes the module, calls the entry and serialises the result, all
under the call's CPU timer, and returns the response body. Nothing the call does survives
it: the call process exits right after writing its response.

The Python-level layers here (restricted builtins, module views, audit hook) are defence
in depth; the guarantee comes from the OS confinement of the worker
(:mod:`sgde.runtime.sandbox.confine`).
"""

from __future__ import annotations

import builtins
import contextlib
import decimal
import importlib
import json
import sys
import types
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_RESULT_DEPTH", "Guard", "Runner", "Sink", "error_body", "warm_up"]

FILENAME = "<sandbox>"
MAX_RESULT_DEPTH = 100
"""Deepest nesting of lists/dicts in a result (the parent decodes far deeper safely)."""
_MAX_MESSAGE_CHARS = 4000
_STDOUT_KEEP = 4096

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


class Guard:
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


class Sink:
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


def error_body(rule: str, message: str, line: int | None = None, **extra: Any) -> dict[str, Any]:
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
    """``type(obj)`` of a value; the three-argument form (class creation) and the type of a
    class (which would be a metaclass such as ``type`` itself) are not available."""
    if isinstance(obj, type):
        raise TypeError("type() of a class is not available in the sandbox")
    return type(obj)


def _no_classes(*args: object, **kwargs: object) -> None:
    raise TypeError("class definitions are not available in the sandbox")


class Runner:
    """Compiles and calls sandboxed functions (one call per forked process)."""

    def __init__(self, config: Mapping[str, Any], guard: Guard, sink: Sink) -> None:
        self.guard = guard
        self.sink = sink
        self.python_layers = bool(config.get("python_layers", True))
        self.tainted = False
        """Set when a call hit the memory limit or a blocked operation: the call process
        must not serve another call."""
        self.max_output = int(config["max_output_bytes"])
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
        for name in config.get("preload", ()):
            importlib.import_module(str(name))
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

    def fresh_namespace(self) -> dict[str, Any]:
        """Globals for code: restricted builtins and module views (or the real ones when
        the Python-level layers are off)."""
        return self._namespace()

    def _namespace(self) -> dict[str, Any]:
        if not self.python_layers:
            return {"__builtins__": builtins, "__name__": "sandbox"}
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

    # -- one call ---------------------------------------------------------------------------

    def call(self, message: Mapping[str, Any]) -> bytes:
        """Run one call and return its response body (JSON bytes).

        The caller has armed the CPU timer; it stays armed until the process exits, so
        formatting errors and serialising results count against the call's CPU limit.
        """
        code = str(message["code"])
        entry = str(message.get("entry", "run"))
        self.sink.reset()
        decimal.setcontext(self.base_context.copy())
        lines: list[str] = code.splitlines()
        failure: BaseException | None = None
        response: dict[str, Any] = {}
        payload: bytes | None = None
        self.guard.active = self.python_layers
        try:
            try:
                kwargs = json.loads(message["kwargs"])
                if not isinstance(kwargs, dict):
                    kwargs = {}
                compiled = compile(code, FILENAME, "exec", dont_inherit=True)
                namespace = self._namespace()
                exec(compiled, namespace)
                function = namespace.get(entry)
                if not callable(function):
                    raise NameError(f"the code defines no function '{entry}'")
                result = function(**kwargs)
            except MemoryError:
                self.tainted = True
                response = error_body("memory-limit", "the code ran out of memory")
            except BaseException as exc:
                failure = exc
            else:
                response, payload = self._serialise(result)
                del result
        finally:
            self.guard.active = False
        if failure is not None:
            try:
                response = self._runtime_error(failure, lines, entry)
            except MemoryError:
                response = error_body("memory-limit", "ran out of memory formatting an error")
            failure = None
        if self.guard.violation is not None:
            self.tainted = True
            response = error_body(
                "forbidden-operation",
                f"the code attempted '{self.guard.violation}', which the sandbox blocks",
            )
            payload = None
        if payload is not None:
            return b'{"ok":true,"result":' + payload + b"}"
        stdout = self.sink.text()
        if stdout:
            response["stdout"] = stdout
        return json.dumps(response).encode()

    def _serialise(self, result: Any) -> tuple[dict[str, Any], bytes | None]:
        if _too_deep(result):
            return error_body(
                "not-json",
                f"the result is nested more than {MAX_RESULT_DEPTH} levels deep; "
                "return a flatter structure",
            ), None
        try:
            text = json.dumps(result, allow_nan=False, separators=(",", ":"))
        except MemoryError:
            return error_body("memory-limit", "ran out of memory encoding the result"), None
        except (TypeError, ValueError, RecursionError) as exc:
            where = _find_non_json(result)
            return (
                error_body(
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
                error_body(
                    "output-too-large",
                    f"the result is {len(payload)} bytes of JSON; the limit is "
                    f"{self.max_output} bytes",
                ),
                None,
            )
        return {"ok": True}, payload

    def _runtime_error(self, exc: BaseException, lines: list[str], entry: str) -> dict[str, Any]:
        frames: list[tuple[int, str]] = []
        if isinstance(exc, SyntaxError) and exc.filename == FILENAME and exc.lineno:
            frames.append((exc.lineno, "<module>"))
        tb = exc.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            if code.co_filename == FILENAME:
                frames.append((tb.tb_lineno, code.co_name))
            tb = tb.tb_next
        kind = type(exc).__name__
        text = f"{kind}: {_safe_str(exc)}"
        if isinstance(exc, TypeError) and not frames and f"{entry}()" in text:
            text += f" (check the parameters of '{entry}' against the inputs passed)"
        if not frames:
            return error_body("runtime-error", text)
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
        return error_body("runtime-error", message, frames[-1][0])


def _too_deep(value: Any) -> bool:
    """Whether ``value`` nests lists/tuples/dicts deeper than :data:`MAX_RESULT_DEPTH`."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen = 0
    while stack and seen < 5_000_000:
        item, depth = stack.pop()
        seen += 1
        if isinstance(item, (dict, list, tuple)):
            if depth >= MAX_RESULT_DEPTH:
                return True
            values = item.values() if isinstance(item, dict) else item
            stack.extend((sub, depth + 1) for sub in values)
    return False


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


def warm_up(runner: Runner) -> None:
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
