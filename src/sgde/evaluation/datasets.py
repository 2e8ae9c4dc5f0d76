"""Dataset files: JSONL reading/writing and the vendored GSM-Hard / GSM8K test sets.

The data files live in ``sgde/evaluation/data/`` (package data, shipped in the wheel); their
origin, commits, hashes and licences are in ``data/SOURCES.md`` and ``data/NOTICE.md``.

Every loader validates every row and raises :class:`~sgde.errors.DataError` naming the file
and the 1-based line of the first bad row.
"""

from __future__ import annotations

import ast
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sgde.errors import DataError

__all__ = [
    "Gsm8kRow",
    "GsmHardRow",
    "data_file",
    "gsm8k_answer",
    "load_gsm8k_test",
    "load_gsm_hard",
    "read_jsonl",
    "write_jsonl",
]

_DATA_PACKAGE = "sgde.evaluation"
_DATA_DIR = "data"


def data_file(name: str) -> Path:
    """Return the path of a vendored data file (e.g. ``"gsm_hard.jsonl"``).

    Raises:
        DataError: if the file is not part of the installed package.
    """
    ref = resources.files(_DATA_PACKAGE).joinpath(_DATA_DIR).joinpath(name)
    path = Path(str(ref))
    if not path.is_file():
        raise DataError(
            f"vendored data file {name!r} is missing from the sgde package",
            path=str(path),
            hint="reinstall sgde; the wheel ships sgde/evaluation/data/*.jsonl",
        )
    return path


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSON Lines file: one JSON object per line; blank lines are skipped.

    Args:
        path: The file to read (UTF-8).

    Returns:
        The rows, in file order.

    Raises:
        DataError: if the file cannot be read, a line is not valid JSON, or a line holds
            something other than a JSON object. ``path`` and ``line`` (1-based) say where.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError("file not found", path=str(p), hint="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read file: {exc}", path=str(p)) from exc
    rows: list[dict[str, Any]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"invalid JSON ({exc.msg} at column {exc.colno})",
                path=str(p),
                line=lineno,
                hint="each line must be one complete JSON object",
            ) from None
        if not isinstance(value, dict):
            raise DataError(
                f"expected a JSON object, got {type(value).__name__}",
                path=str(p),
                line=lineno,
                hint='each line must be one JSON object such as {"question": ...}',
            )
        rows.append(value)
    return rows


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Write rows as JSON Lines, atomically (temporary file in the same folder, then rename).

    Keys keep their insertion order; non-ASCII text is written as UTF-8. The same rows always
    give the same bytes.

    Args:
        path: The destination file; parent folders are created.
        rows: JSON-serialisable mappings.

    Raises:
        DataError: if a row is not JSON-serialisable (the message names its 1-based index).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for i, row in enumerate(rows, start=1):
        try:
            lines.append(json.dumps(dict(row), ensure_ascii=False, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise DataError(f"row {i} is not JSON-serialisable: {exc}", path=str(p)) from exc
    # mkstemp creates the file 0600; keep the destination's mode, else the usual 0644.
    mode = p.stat().st_mode & 0o777 if p.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write("".join(line + "\n" for line in lines))
        os.chmod(tmp, mode)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class GsmHardRow(BaseModel):
    """One GSM-Hard row (PAL authors' ``gsmhardv2.jsonl``).

    Attributes:
        index: 0-based row index in the file (line number - 1).
        input: The problem text, usually with one number replaced by a large one.
        code: Python source defining ``solution()``; its docstring is the GSM8K wording.
        target: The value ``solution()`` returns.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0)
    input: str = Field(min_length=1)
    code: str = Field(min_length=1)
    target: float

    @property
    def docstring(self) -> str | None:
        """The original GSM8K question (the docstring of ``solution``), or None if absent."""
        return _solution_docstring(self.code)


class Gsm8kRow(BaseModel):
    """One GSM8K test row.

    Attributes:
        index: 0-based row index in the file.
        question: The problem text.
        answer: The worked solution; the final answer follows ``#### ``.
        final: The final answer as a number (parsed from ``answer``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    index: int = Field(ge=0)
    question: str = Field(min_length=1)
    answer: str = Field(min_length=1)
    final: float


def _solution_docstring(code: str) -> str | None:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "solution":
            return ast.get_docstring(node, clean=False)
    return None


def gsm8k_answer(answer: str) -> float | None:
    """Parse the final answer of a GSM8K worked solution (the text after ``#### ``)."""
    _, sep, tail = answer.rpartition("####")
    if not sep:
        return None
    try:
        return float(tail.strip().replace(",", ""))
    except ValueError:
        return None


def load_gsm_hard(path: str | os.PathLike[str] | None = None) -> list[GsmHardRow]:
    """Load GSM-Hard, validating every row.

    Args:
        path: A file in the same format; defaults to the vendored copy.

    Raises:
        DataError: naming the file and line of the first invalid row (missing/extra
            fields, wrong types, code without a ``solution`` function).
    """
    p = Path(path) if path is not None else data_file("gsm_hard.jsonl")
    out: list[GsmHardRow] = []
    for i, raw in enumerate(read_jsonl(p)):
        try:
            row = GsmHardRow(index=i, **raw)
        except (ValidationError, TypeError) as exc:
            raise DataError(
                f"invalid GSM-Hard row: {_first_error(exc)}",
                path=str(p),
                line=i + 1,
                hint="rows need input (str), code (str) and target (number)",
            ) from None
        if row.docstring is None:
            raise DataError(
                "code does not define solution() with a docstring",
                path=str(p),
                line=i + 1,
            )
        out.append(row)
    return out


def load_gsm8k_test(path: str | os.PathLike[str] | None = None) -> list[Gsm8kRow]:
    """Load the GSM8K test split, validating every row and parsing the final answers.

    Args:
        path: A file in the same format; defaults to the vendored copy.

    Raises:
        DataError: naming the file and line of the first invalid row.
    """
    p = Path(path) if path is not None else data_file("gsm8k_test.jsonl")
    out: list[Gsm8kRow] = []
    for i, raw in enumerate(read_jsonl(p)):
        answer = raw.get("answer")
        final = gsm8k_answer(answer) if isinstance(answer, str) else None
        if final is None:
            raise DataError(
                "answer has no numeric final answer after '####'",
                path=str(p),
                line=i + 1,
            )
        try:
            out.append(Gsm8kRow(index=i, final=final, **raw))
        except (ValidationError, TypeError) as exc:
            raise DataError(
                f"invalid GSM8K row: {_first_error(exc)}",
                path=str(p),
                line=i + 1,
                hint="rows need question (str) and answer (str)",
            ) from None
    return out


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        return f"{loc}: {err['msg']}" if loc else str(err["msg"])
    return str(exc)
