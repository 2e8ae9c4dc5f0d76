"""JSON Lines files: one JSON object per line, errors that name the file and the line.

Every JSONL file sgde reads — datasets (``sgde run/eval --dataset``), run traces, synthesised
data — goes through :func:`iter_jsonl`, so they all accept the same input (UTF-8, a BOM is
ignored, blank lines are skipped) and fail with the same :class:`~sgde.errors.DataError`
naming ``file:line``. :func:`write_jsonl` writes atomically (see
:func:`sgde.planfile.files.write_text_atomic`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sgde.errors import DataError
from sgde.planfile.files import data_max_bytes, read_user_text, write_text_atomic

__all__ = ["MAX_DEPTH", "iter_jsonl", "read_jsonl", "write_jsonl"]


MAX_DEPTH = 100
"""Deepest nesting of lists and objects accepted in one row (deeper rows are refused)."""


def _too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists/objects more than ``limit`` levels (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _parse_line(line: str, source: Path, number: int) -> Any:
    def fail(message: str, hint: str) -> DataError:
        return DataError(message, path=str(source), line=number, hint=hint)

    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise fail(
            f"invalid JSON ({exc.msg} at column {exc.colno})",
            "each line must be one complete JSON object",
        ) from None
    except RecursionError:
        raise fail(
            f"JSON nested too deeply (more than {MAX_DEPTH} levels)",
            "flatten the row: nested lists and objects",
        ) from None
    except ValueError as exc:  # e.g. an integer over sys.get_int_max_str_digits() digits
        detail = str(exc).splitlines()[0].split(";")[0][:120]
        raise fail(
            f"invalid JSON value ({detail})",
            "write very large numbers as strings",
        ) from None
    except MemoryError:
        raise fail("the row is too large to parse", "split the row") from None
    if _too_deep(value, MAX_DEPTH):
        raise fail(
            f"JSON nested too deeply (more than {MAX_DEPTH} levels)",
            "flatten the row: nested lists and objects",
        )
    return value


def iter_jsonl(
    path: str | os.PathLike[str], *, what: str = "file"
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, object)`` for each non-blank line of a JSONL file.

    The file is read at once; lines are parsed as the iterator advances, so a caller that
    stops early (``--limit``) never sees errors further down.

    Args:
        path: The file (UTF-8; a byte-order mark is ignored).
        what: What the file is, for messages (``"dataset"``, ``"trace file"``).

    Only regular files up to :func:`~sgde.planfile.files.data_max_bytes` are read (a FIFO or
    ``/dev/zero`` is refused at once). Rows nested deeper than :data:`MAX_DEPTH` levels and
    integers longer than Python's digit limit are refused with their line.

    Raises:
        DataError: the file cannot be read, a line is not valid JSON, or a line holds
            something other than a JSON object; ``path`` and ``line`` (1-based) say where.
    """
    source = Path(path)
    text = read_user_text(
        source,
        what=what,
        max_bytes=data_max_bytes(),
        limit_hint="split the file, or raise the limit with SGDE_MAX_DATA_MB=<mebibytes>",
    )
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        value = _parse_line(line, source, number)
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
