"""JSON Lines files: one JSON object per line, errors that name the file and the line.

Every JSONL file sgde reads — datasets (``sgde run/eval --dataset``), run traces, synthesised
data — goes through :func:`iter_jsonl`, so they all accept the same input (UTF-8, a BOM is
ignored, blank lines are skipped) and fail with the same :class:`~sgde.errors.DataError`
naming ``file:line``. :func:`write_jsonl` writes atomically (see
:func:`sgde.plan.files.write_text_atomic`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sgde.errors import DataError
from sgde.plan.files import write_text_atomic

__all__ = ["iter_jsonl", "read_jsonl", "write_jsonl"]


def _read_text(path: Path, what: str) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(
            f"cannot read {what}: file not found", path=str(path), hint="check the path"
        ) from None
    except IsADirectoryError:
        raise DataError(
            f"cannot read {what}: it is a directory", path=str(path), hint="pass a .jsonl file"
        ) from None
    except OSError as exc:
        raise DataError(f"cannot read {what}: {exc.strerror or exc}", path=str(path)) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"cannot read {what}: not UTF-8 text (byte {exc.start})",
            path=str(path),
            line=raw[: exc.start].count(b"\n") + 1,
            hint="save the file as UTF-8",
        ) from None


def iter_jsonl(
    path: str | os.PathLike[str], *, what: str = "file"
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSONL file.

    The file is read at once; lines are parsed as the iterator advances, so a caller that
    stops early (``--limit``) never sees errors further down.

    Args:
        path: The file (UTF-8; a byte-order mark is ignored).
        what: What the file is, for messages (``"dataset"``, ``"trace file"``).

    Raises:
        DataError: the file cannot be read, a line is not valid JSON, or a line holds
            something other than a JSON object; ``path`` and ``line`` (1-based) say where.
    """
    source = Path(path)
    text = _read_text(source, what)
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"invalid JSON ({exc.msg} at column {exc.colno})",
                path=str(source),
                line=number,
                hint="each line must be one complete JSON object",
            ) from None
        if not isinstance(value, dict):
            raise DataError(
                f"expected a JSON object, got {_json_type(value)}",
                path=str(source),
                line=number,
                hint='each line must be one JSON object such as {"question": ...}',
            )
        yield number, value


def read_jsonl(path: str | os.PathLike[str], *, what: str = "file") -> list[dict[str, Any]]:
    """Read a JSON Lines file: one JSON object per line; blank lines are skipped.

    Args:
        path: The file to read (UTF-8).
        what: What the file is, for messages.

    Returns:
        The rows, in file order.

    Raises:
        DataError: as :func:`iter_jsonl`.
    """
    return [row for _, row in iter_jsonl(path, what=what)]


def write_jsonl(
    path: str | os.PathLike[str],
    rows: Iterable[Mapping[str, Any]],
    *,
    what: str = "file",
) -> None:
    """Write rows as JSON Lines, atomically; parent directories are created.

    Keys keep their insertion order; non-ASCII text is written as UTF-8. The same rows
    always give the same bytes.

    Args:
        path: The destination file.
        rows: JSON-serialisable mappings (NaN and infinity are refused: not JSON).
        what: What the file is, for messages.

    Raises:
        DataError: a row is not JSON-serialisable (the message names its 1-based index);
            the file is then left as it was.
        UsageError: the file cannot be written.
    """
    lines: list[str] = []
    for index, row in enumerate(rows, start=1):
        try:
            lines.append(json.dumps(dict(row), ensure_ascii=False, allow_nan=False) + "\n")
        except (TypeError, ValueError) as exc:
            raise DataError(f"row {index} is not JSON-serialisable: {exc}", path=str(path)) from exc
    write_text_atomic(path, "".join(lines), what=what, make_parents=True)


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    return "number"
