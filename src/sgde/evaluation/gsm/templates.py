"""GSM-Hard templates: a problem's text with slots and its code with parameters.

A :class:`Template` is one GSM-Hard row with its numbers turned into typed parameters
(:class:`Param`) and the constraints synthesis must keep; a :class:`TemplateFailure` says why a
row could not be templatised (a reason code of :data:`FAILURE_REASONS`). This module holds the
model, the vendored precomputed file (:func:`load_templates`, :func:`get_template`,
:func:`save_template_results`) and :func:`coverage`. Building templates from rows (alignment,
verification in the sandbox) is :mod:`sgde.evaluation.gsm.templatiser`.

Templatising all 1,319 rows takes ~4,000 sandbox calls, so the results are precomputed by
``scripts/build_templates.py`` into the vendored ``data/gsm_hard_templates.jsonl`` and read by
:func:`load_templates` (instant). A test checks the file is up to date.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sgde.errors import DataError, UsageError
from sgde.evaluation.gsm._align import (
    instrument,
)
from sgde.evaluation.gsm.datasets import data_file
from sgde.runtime.jsonl import read_jsonl, write_jsonl

__all__ = [
    "FAILURE_REASONS",
    "TEMPLATES_FILE",
    "TEMPLATISER_VERSION",
    "Coverage",
    "Intermediate",
    "Param",
    "Template",
    "TemplateFailure",
    "coverage",
    "format_number",
    "get_template",
    "load_template_results",
    "load_templates",
    "save_template_results",
    "source_digest",
    "template_id_for",
]

TEMPLATISER_VERSION = 1
TEMPLATES_FILE = "gsm_hard_templates.jsonl"
FAILURE_REASONS: dict[str, str] = {
    "unsupported-code": "the code does not parse, has no solution() or loops",
    "malformed-text": "a number in the text was broken by GSM-Hard's string replacement",
    "no-numbers": "no number of the text matches a literal of the code",
    "text-code-disagree": "label error: the text and the code use different numbers",
    "unused-number": "a number of the text has no literal in the code (derived or restated)",
    "ambiguous-alignment": "a value repeats in the text or code and the roles are unclear",
    "code-error": "the original code raises or times out",
    "non-numeric-target": "the code or the target is not a finite number",
    "target-mismatch": "the original code does not return the row's target",
    "template-mismatch": "the parametrised code does not reproduce the target",
    "gsm8k-mismatch": "with GSM8K's numbers the code does not give GSM8K's answer",
}


class Param(BaseModel):
    """One parameter of a template (one literal of the code, one or more slots in the text).

    Attributes:
        name: Parameter and slot name.
        original: The GSM-Hard value (reproduces ``target``).
        gsm8k: The value in the original GSM8K wording, when paired.
        integral: Whether values must be integers (originals integral, written without
            decimals).
        decimals: Decimals allowed when not integral (as written, at least 1).
        fixed_decimals: Render always with ``decimals`` digits (written like ``"$15.00"``).
        positive: The originals were > 0 (values must be > 0).
        percent: Written as a percentage; values are kept at most 100 when the GSM8K one was.
        money: Written after a currency sign.
        digits: Integer digits of the originals (GSM8K, GSM-Hard), e.g. ``(2, 7)``.
        slots: How many times the slot appears in the text.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    original: float | int
    gsm8k: float | int | None = None
    integral: bool
    decimals: int = Field(ge=0)
    fixed_decimals: bool = False
    positive: bool = True
    percent: bool = False
    money: bool = False
    digits: tuple[int, int]
    slots: int = Field(default=1, ge=1)


class Intermediate(BaseModel):
    """An assigned variable of the template code and its value for the reference values."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    value: float
    nonnegative: bool
    integral: bool


class Template(BaseModel):
    """A templatised GSM-Hard row.

    Attributes:
        id: ``"gsmhard-NNNN"`` with the 0-based row index.
        index: The row index in GSM-Hard.
        description: The first words of the question (for listings).
        text: The question with ``{name}`` slots (literal braces doubled).
        code: Python defining ``run(<params>)`` that returns the answer.
        entry: The function to call (``"run"``).
        params: The parameters, in order of first appearance in the text.
        target: GSM-Hard's target (``run(**originals)`` returns it).
        gsm8k_answer: GSM8K's answer for the original wording, when known.
        reference: Which values the constraints were read from (``"gsm8k"`` or ``"gsm-hard"``).
        answer_integral: The reference answer was an integer (synthetic answers must be too).
        answer_decimals: Decimals allowed in synthetic answers otherwise.
        intermediates: Assigned variables with their reference values.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: int = 1
    id: str
    index: int = Field(ge=0)
    description: str
    text: str
    code: str
    entry: str = "run"
    params: tuple[Param, ...]
    target: float
    gsm8k_answer: float | None = None
    reference: str
    answer_integral: bool
    answer_decimals: int = Field(ge=0)
    intermediates: tuple[Intermediate, ...] = ()

    def originals(self) -> dict[str, float | int]:
        """The GSM-Hard values of the parameters."""
        return {p.name: p.original for p in self.params}

    def render(self, values: Mapping[str, float | int], *, thousands: bool = False) -> str:
        """The question with ``values`` in the slots, numbers written as a person would.

        Args:
            values: A value per parameter.
            thousands: Write thousands separators (``1,234,567``); off by default, as in
                GSM-Hard.

        Raises:
            UsageError: if a parameter has no value.
        """
        missing = [p.name for p in self.params if p.name not in values]
        if missing:
            raise UsageError(f"template {self.id}: no value for {', '.join(missing)}")
        formatted = {
            p.name: format_number(
                values[p.name],
                decimals=p.decimals if p.fixed_decimals else None,
                thousands=thousands,
            )
            for p in self.params
        }
        return self.text.format_map(formatted)

    def trace_code(self) -> str:
        """The code instrumented to return ``{"result": ..., "vars": {...}}``."""
        return instrument(self.code, self.entry)


class TemplateFailure(BaseModel):
    """Why a row could not be templatised.

    Attributes:
        id: ``"gsmhard-NNNN"``.
        index: The row index.
        reason: A key of :data:`FAILURE_REASONS`.
        detail: What exactly was found.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    index: int = Field(ge=0)
    reason: str
    detail: str


def format_number(
    value: float | int, *, decimals: int | None = None, thousands: bool = False
) -> str:
    """Write a number as a person would: ``12`` not ``12.0``, ``2.5``, never ``1e+07``.

    Args:
        value: The number.
        decimals: Always this many decimals (money written as ``2.50``); None writes the
            shortest form (up to 10 decimals, trailing zeros dropped).
        thousands: Group thousands with commas.
    """
    if decimals is not None:
        text = f"{value:,.{decimals}f}" if thousands else f"{value:.{decimals}f}"
        return text
    if isinstance(value, int) or float(value).is_integer():
        iv = int(value)
        return f"{iv:,}" if thousands else str(iv)
    text = f"{value:,.10f}" if thousands else f"{value:.10f}"
    return text.rstrip("0").rstrip(".")


def template_id_for(index: int) -> str:
    """The id of the template of GSM-Hard row ``index`` (``"gsmhard-0042"``)."""
    return f"gsmhard-{index:04d}"


def source_digest(path: Any | None = None) -> str:
    """sha256 of the GSM-Hard file the templates were built from."""
    p = data_file("gsm_hard.jsonl") if path is None else path
    with open(p, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def save_template_results(path: Any, results: Sequence[Template | TemplateFailure]) -> None:
    """Write results as JSONL: a header line, then one template or failure per line."""
    header = {
        "kind": "header",
        "schema_version": 1,
        "templatiser_version": TEMPLATISER_VERSION,
        "source_sha256": source_digest(),
        "rows": len(results),
    }
    lines: list[dict[str, Any]] = [header]
    for r in results:
        kind = "template" if isinstance(r, Template) else "failure"
        lines.append({"kind": kind, **r.model_dump(mode="json")})
    write_jsonl(path, lines)


def load_template_results(path: Any | None = None) -> list[Template | TemplateFailure]:
    """Read templatisation results (default: the vendored, precomputed file).

    Raises:
        DataError: if the file is missing, malformed, or a line is not a valid result.
    """
    p = data_file(TEMPLATES_FILE) if path is None else path
    rows = read_jsonl(p)
    if not rows or rows[0].get("kind") != "header":
        raise DataError(
            "missing header line",
            path=str(p),
            line=1,
            hint="rebuild with scripts/build_templates.py",
        )
    out: list[Template | TemplateFailure] = []
    for lineno, raw in enumerate(rows[1:], start=2):
        kind = raw.pop("kind", None)
        try:
            if kind == "template":
                out.append(Template.model_validate(raw))
            elif kind == "failure":
                out.append(TemplateFailure.model_validate(raw))
            else:
                raise ValueError(f"unknown kind {kind!r}")
        except ValueError as exc:
            raise DataError(f"invalid template result: {exc}", path=str(p), line=lineno) from None
    return out


def load_templates(path: Any | None = None) -> list[Template]:
    """The templates (successful results only), in row order."""
    return [r for r in load_template_results(path) if isinstance(r, Template)]


def get_template(template_id: str, templates: Sequence[Template] | None = None) -> Template:
    """Look a template up by id (``"gsmhard-0000"``; a bare row number ``"0"`` also works).

    Raises:
        UsageError: naming close ids when there is no such template.
    """
    pool = list(templates) if templates is not None else load_templates()
    wanted = template_id.strip()
    if re.fullmatch(r"\d+", wanted):
        wanted = template_id_for(int(wanted))
    for t in pool:
        if t.id == wanted:
            return t
    failures = {f.id: f for f in load_template_results() if isinstance(f, TemplateFailure)}
    if templates is None and wanted in failures:
        f = failures[wanted]
        raise UsageError(
            f"row {f.index} could not be templatised ({f.reason}: {f.detail})",
            hint="`sgde synth --list` lists the available templates",
        )
    close = difflib.get_close_matches(wanted, [t.id for t in pool], n=3, cutoff=0.8)
    suggestion = "; did you mean " + ", ".join(repr(c) for c in close) + "?" if close else ""
    raise UsageError(
        f"no template {template_id!r}{suggestion}",
        hint="`sgde synth --list` lists the available templates",
    )


class Coverage(BaseModel):
    """Templatised rows out of the total, and failures by reason."""

    total: int
    templatised: int
    by_reason: dict[str, int]

    @property
    def fraction(self) -> float:
        """Templatised / total."""
        return self.templatised / self.total if self.total else 0.0

    def render(self) -> str:
        """A small plain-text table."""
        lines = [f"templatised  {self.templatised:5d} / {self.total}  ({self.fraction:.1%})"]
        for reason, n in sorted(self.by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"{reason:<20} {n:5d}  {FAILURE_REASONS.get(reason, '')}")
        return "\n".join(lines)


def coverage(results: Sequence[Template | TemplateFailure]) -> Coverage:
    """Count templatised rows and failures by reason."""
    reasons = Counter(r.reason for r in results if isinstance(r, TemplateFailure))
    return Coverage(
        total=len(results),
        templatised=sum(isinstance(r, Template) for r in results),
        by_reason=dict(reasons),
    )
