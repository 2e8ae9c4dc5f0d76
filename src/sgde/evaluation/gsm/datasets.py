"""Dataset files: the vendored GSM-Hard / GSM8K test sets.

JSONL reading and writing is :mod:`sgde.runtime.jsonl` (the one JSONL reader of sgde, shared
with run traces, ``sgde run --dataset`` and the bench).

The data files live in ``sgde/evaluation/gsm/data/`` (package data, shipped in the wheel); their
origin, commits, hashes and licences are in ``data/SOURCES.md`` and ``data/NOTICE.md``.

Every loader validates every row and raises :class:`~sgde.errors.DataError` naming the file
and the 1-based line of the first bad row.
"""

from __future__ import annotations

import ast
import os
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sgde.errors import DataError
from sgde.runtime.jsonl import iter_jsonl

__all__ = [
    "Gsm8kRow",
    "GsmHardRow",
    "data_file",
    "gsm8k_answer",
    "load_gsm8k_test",
    "load_gsm_hard",
]

_DATA_PACKAGE = "sgde.evaluation.gsm"
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
            hint="reinstall sgde; the wheel ships sgde/evaluation/gsm/data/*.jsonl",
        )
    return path


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
    for line, raw in iter_jsonl(p, what="GSM-Hard file"):
        row = _validated(
            GsmHardRow,
            dict(raw, index=len(out)),
            p,
            line,
            what="GSM-Hard row",
            hint="rows need input (str), code (str) and target (number)",
        )
        if row.docstring is None:
            raise DataError(
                "code does not define solution() with a docstring", path=str(p), line=line
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
    for line, raw in iter_jsonl(p, what="GSM8K file"):
        answer = raw.get("answer")
        final = gsm8k_answer(answer) if isinstance(answer, str) else None
        if final is None:
            raise DataError(
                "answer has no numeric final answer after '####'", path=str(p), line=line
            )
        row = _validated(
            Gsm8kRow,
            dict(raw, index=len(out), final=final),
            p,
            line,
            what="GSM8K row",
            hint="rows need question (str) and answer (str)",
        )
        out.append(row)
    return out


_RowT = TypeVar("_RowT", bound=BaseModel)


def _validated(
    model: type[_RowT], data: dict[str, Any], path: Path, line: int, *, what: str, hint: str
) -> _RowT:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        detail = f"{loc}: {err['msg']}" if loc else str(err["msg"])
        raise DataError(f"invalid {what}: {detail}", path=str(path), line=line, hint=hint) from None
