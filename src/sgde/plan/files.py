"""Atomic text-file writes, shared by every layer that saves a file.

A reader never sees a half-written file: the text goes to a temporary file in the same
directory, is flushed to disk, and then replaces the target with ``os.replace``. An existing
file keeps its permissions; a new one gets the usual ``0o666`` minus the umask (mkstemp's
``0o600`` would hide shared reports and datasets from other users).

It lives in :mod:`sgde.plan` because that is the lowest layer that writes files (plan files);
:mod:`sgde.runtime` (traces), :mod:`sgde.evaluation` (datasets, reports, bench checkpoints)
use the same function.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from sgde.errors import UsageError

__all__ = ["write_text_atomic"]


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
        UsageError: when the file cannot be written (missing directory, permissions); the
            destination is then unchanged and no temporary file is left behind.
    """
    target = Path(path)
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
