"""User files, read and written safely; shared by every layer that touches a file.

Reading (:func:`read_user_bytes`, :func:`read_user_text`): plan files, datasets, bench
configs, traces and price files are *user input*, so a read never hangs or exhausts memory.
The path is checked with ``os.stat`` before it is opened: only regular files are read (a FIFO
would block forever, ``/dev/zero`` would never end), files over a size limit are refused
before a byte is read, and the read itself stops at the limit (a file that grows while it
is read). Every failure is one :class:`~sgde.errors.DataError` naming the file.

Writing (:func:`write_text_atomic`): a reader never sees a half-written file: the text goes
to a temporary file in the same directory, is flushed to disk, and then replaces the target
with ``os.replace``. Only regular files are replaced (never a device, FIFO or socket). An
existing file keeps its permissions; a new one gets the usual ``0o666`` minus the umask
(mkstemp's ``0o600`` would hide shared reports and datasets from other users).

It lives in :mod:`sgde.planfile` because that is the lowest layer that reads and writes files
(plan files); :mod:`sgde.runtime` (traces, JSONL), :mod:`sgde.evaluation` (datasets, reports,
bench checkpoints) and :mod:`sgde.models` (price files) use the same functions.

Size limits (bytes): :data:`PLAN_MAX_BYTES` for plans and other YAML configuration (4 MiB:
PyYAML parses about 1 MB a second, so this bounds a load to seconds),
:data:`DATA_MAX_BYTES` for data files such as JSONL datasets and traces (256 MiB; the
environment variable ``SGDE_MAX_DATA_MB`` raises it, e.g. ``SGDE_MAX_DATA_MB=4096``).
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from sgde.errors import DataError, UsageError

__all__ = [
    "DATA_MAX_BYTES",
    "PLAN_MAX_BYTES",
    "data_max_bytes",
    "file_kind",
    "read_user_bytes",
    "read_user_text",
    "write_text_atomic",
]

PLAN_MAX_BYTES = 4 * 1024 * 1024
"""Largest plan or YAML configuration file read (4 MiB; real plans are kilobytes)."""

DATA_MAX_BYTES = 256 * 1024 * 1024
"""Default largest data file read (256 MiB); ``$SGDE_MAX_DATA_MB`` overrides it."""

_DATA_ENV = "SGDE_MAX_DATA_MB"
_CHUNK = 1024 * 1024


def data_max_bytes() -> int:
    """The data-file size limit: ``$SGDE_MAX_DATA_MB`` mebibytes, else :data:`DATA_MAX_BYTES`.

    Raises:
        UsageError: when the variable is not a positive whole number.
    """
    raw = os.environ.get(_DATA_ENV, "").strip()
    if not raw:
        return DATA_MAX_BYTES
    if not raw.isdigit() or int(raw) < 1:
        raise UsageError(
            f"{_DATA_ENV}={raw[:20]!r} is not a positive whole number of mebibytes",
            hint=f"e.g. {_DATA_ENV}=4096 reads data files of up to 4 GiB",
        )
    return int(raw) * 1024 * 1024


def file_kind(mode: int) -> str:
    """What a non-regular ``st_mode`` is, for messages: ``"a directory"``, ``"a FIFO ..."``."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _size_text(n: int) -> str:
    return f"{n / (1024 * 1024):,.0f} MiB" if n >= 1024 * 1024 else f"{n:,} bytes"


def read_user_bytes(
    path: str | os.PathLike[str],
    *,
    what: str = "file",
    max_bytes: int = PLAN_MAX_BYTES,
    limit_hint: str | None = None,
) -> bytes:
    """Read a user-supplied file: regular files only, at most ``max_bytes``.

    Args:
        path: The file.
        what: What the file is, for messages (``"plan file"``, ``"dataset"``).
        max_bytes: Refuse files larger than this.
        limit_hint: What to tell the user when the file is too large.

    Raises:
        DataError: missing, a directory, FIFO, device or socket, unreadable, or too large;
            the message names the file. Never blocks on a FIFO.
    """
    name = os.fspath(path)

    def fail(reason: str, hint: str | None = None) -> DataError:
        return DataError(f"cannot read {what}: {reason}", path=name, hint=hint)

    try:
        info = os.stat(name)
    except FileNotFoundError:
        raise fail("file not found", "check the path") from None
    except NotADirectoryError:
        raise fail("a part of the path is not a directory", "check the path") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the path
        raise fail(getattr(exc, "strerror", None) or str(exc)) from None
    if not stat.S_ISREG(info.st_mode):
        kind = file_kind(info.st_mode)
        hint = "pass the path of a file" if kind == "a directory" else "pass a regular file"
        raise fail(f"it is {kind}, not a regular file", hint) from None
    if info.st_size > max_bytes:
        raise fail(
            f"{_size_text(info.st_size)} is over the {_size_text(max_bytes)} limit", limit_hint
        )
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        # O_NONBLOCK: if the path was swapped for a FIFO after the stat, open does not wait.
        fd = os.open(name, flags)
    except OSError as exc:
        raise fail(exc.strerror or str(exc)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped between stat and open
            raise fail("it is not a regular file", "pass a regular file")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(_CHUNK, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise fail(f"it grew past the {_size_text(max_bytes)} limit", limit_hint)
    except OSError as exc:
        raise fail(exc.strerror or str(exc)) from None
    finally:
        os.close(fd)
    return b"".join(chunks)


def read_user_text(
    path: str | os.PathLike[str],
    *,
    what: str = "file",
    max_bytes: int = PLAN_MAX_BYTES,
    limit_hint: str | None = None,
) -> str:
    """Read a user-supplied file as UTF-8 text (a byte-order mark is dropped).

    Raises:
        DataError: as :func:`read_user_bytes`, or when the file is not UTF-8 (naming the
            line of the first bad byte).
    """
    raw = read_user_bytes(path, what=what, max_bytes=max_bytes, limit_hint=limit_hint)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"cannot read {what}: not UTF-8 text (byte {exc.start})",
            path=os.fspath(path),
            line=raw[: exc.start].count(b"\n") + 1,
            hint="save the file as UTF-8",
        ) from None


def write_text_atomic(
    path: str | os.PathLike[str],
    text: str,
    *,
    what: str = "file",
    make_parents: bool = False,
) -> None:
    """Write ``text`` (UTF-8, newlines as given) to ``path`` atomically.

    Args:
        path: The destination file.
        text: The whole new content.
        what: What the file is, for the error message (``"plan file"``, ``"report"``).
        make_parents: Create missing parent directories first.

    Raises:
        UsageError: when the file cannot be written (missing directory, permissions, a
            target that is a directory, device or FIFO); the destination is then unchanged
            and no temporary file is left behind.
    """
    target = Path(path)
    try:
        info = target.stat()
    except OSError:
        info = None  # missing (or unreachable: the write below reports it)
    if info is not None and not stat.S_ISREG(info.st_mode):
        raise UsageError(
            f"cannot write {what} {target}: it is {file_kind(info.st_mode)}, not a regular file",
            hint="pass the path of a regular file (it is replaced as a whole)",
        )
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        if make_parents:
            target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(text.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            if target.exists():
                os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise UsageError(
            f"cannot write {what} {target}: {exc.strerror or exc}",
            hint="check that the directory exists and is writable",
        ) from None
