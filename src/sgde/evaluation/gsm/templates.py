"""GSM-Hard templates: a problem's text with slots and its code with parameters.

:func:`templatise` turns one GSM-Hard row into a :class:`Template` or says why it cannot
(:class:`TemplateFailure`, with a reason code). The steps:

1. Find the numbers of the question (digits and number words) and pair them with the numbers
   of the original GSM8K wording (the docstring of the row's code).
2. Find the numeric literals of ``solution()`` and align them with the question's numbers by
   value (``"20%"`` also matches ``0.2``). Several mentions of one value with one literal
   become one parameter with several slots; several literals of one value are told apart by
   the overlap of variable names with the words around the number, else the row is
   ``ambiguous-alignment``. Numbers 0 and 1, ordinals, clock times and fractions stay text.
3. Catch GSM-Hard's label errors (``text-code-disagree``): a number the text changed from
   GSM8K that has no literal in the code (row 51: "18387270 students", code uses 15), or an
   old GSM8K number the code still uses after the text replaced it (row 2).
4. Rewrite ``solution()`` into ``run(<params>)`` and verify, *in the sandbox*: the original
   code returns ``target`` (``code-error``, ``non-numeric-target``, ``target-mismatch``);
   the template with the GSM-Hard values returns ``target`` (``template-mismatch``); the
   template with the GSM8K values returns GSM8K's answer (``gsm8k-mismatch``) — a second,
   independent data point that catches wrong alignments and wrong code.
5. Record the constraints synthesis must keep: each parameter's integrality, sign,
   magnitude and decimals, and which intermediates (the values of the code's assignments)
   were non-negative / integral for the reference values (GSM8K's when known: GSM-Hard's
   replacements often make intermediates negative, e.g. -4933815 eggs sold).

Templatising all 1,319 rows takes ~4,000 sandbox calls, so the results are precomputed by
``scripts/build_templates.py`` into the vendored ``data/gsm_hard_templates.jsonl`` and read by
:func:`load_templates` (instant). A test checks the file is up to date.
"""

from __future__ import annotations

import ast
import asyncio
import difflib
import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sgde.errors import DataError, SandboxError, UsageError
from sgde.evaluation.gsm._align import (
    BATCH_ENTRY,
    Alignment,
    AlignmentFailure,
    align,
    batch_program,
    build_code,
    build_text,
    find_literals,
    instrument,
    solution_function,
)
from sgde.evaluation.gsm._mentions import Mention, find_mentions, pair_mentions
from sgde.evaluation.gsm.datasets import GsmHardRow, data_file
from sgde.runtime.calls import CodeRunner
from sgde.runtime.jsonl import read_jsonl, write_jsonl
from sgde.runtime.sync import run_sync

__all__ = [
    "FAILURE_REASONS",
    "TEMPLATES_FILE",
    "TEMPLATISER_VERSION",
    "Coverage",
    "Intermediate",
    "Param",
    "Template",
    "TemplateFailure",
    "analyse",
    "coverage",
    "format_number",
    "get_template",
    "gsm8k_answers_by_question",
    "load_template_results",
    "load_templates",
    "save_template_results",
    "source_digest",
    "templatise",
    "templatise_async",
    "templatise_many",
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
_TOL = 1e-6


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


def _template_id(index: int) -> str:
    return f"gsmhard-{index:04d}"


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _decimals_in(value: float) -> int:
    text = format_number(value)
    return len(text.split(".", 1)[1]) if "." in text else 0


def _native(value: float, integral: bool) -> float | int:
    return int(value) if integral else value


class _Draft:
    """A row after static analysis, before verification."""

    def __init__(
        self,
        row: GsmHardRow,
        alignment: Alignment,
        mentions: list[Mention],
        doc_mentions: list[Mention],
        pairs: dict[int, int],
    ) -> None:
        self.row = row
        self.alignment = alignment
        self.code = build_code(row.code, alignment.params)
        self.text = build_text(row.input, mentions, alignment.params)
        self.params: list[Param] = []
        self.gsm8k_values: dict[str, float | int] | None = {}
        for d in alignment.params:
            ms = [mentions[i] for i in d.mentions]
            docs = [doc_mentions[pairs[i]] for i in d.mentions if i in pairs]
            hard = ms[0].value
            old = docs[0].value if docs else None
            decimals = max(m.decimals for m in ms + docs)
            integral = (
                decimals == 0
                and float(hard).is_integer()
                and (old is None or float(old).is_integer())
            )
            money = any(m.money for m in ms)
            if not integral:
                decimals = 2 if money else max(decimals, _decimals_in(hard), 1)
            if old is None and self.gsm8k_values is not None:
                self.gsm8k_values = None
            elif old is not None and self.gsm8k_values is not None:
                self.gsm8k_values[d.name] = _native(old, integral)
            self.params.append(
                Param(
                    name=d.name,
                    original=_native(hard, integral),
                    gsm8k=None if old is None else _native(old, integral),
                    integral=integral,
                    decimals=0 if integral else decimals,
                    fixed_decimals=money and not integral,
                    positive=hard > 0,
                    percent=any(m.percent for m in ms),
                    money=money,
                    digits=(_digits(old if old is not None else hard), _digits(hard)),
                    slots=len(ms),
                )
            )

    def originals(self) -> dict[str, float | int]:
        return {p.name: p.original for p in self.params}


def _digits(value: float) -> int:
    return len(str(int(abs(value)))) if abs(value) >= 1 else 0


def _as_row(row: GsmHardRow | Mapping[str, Any], index: int | None) -> GsmHardRow:
    if isinstance(row, GsmHardRow):
        return (
            row if index is None or index == row.index else row.model_copy(update={"index": index})
        )
    return GsmHardRow(
        index=index if index is not None else int(row.get("index", 0)),
        input=row["input"],
        code=row["code"],
        target=row["target"],
    )


def analyse(row: GsmHardRow) -> _Draft | TemplateFailure:
    """Static analysis of a row: alignment, slotted text and parametrised code (no execution)."""
    tid = _template_id(row.index)
    try:
        tree = ast.parse(row.code)
    except SyntaxError as exc:
        return TemplateFailure(
            id=tid,
            index=row.index,
            reason="unsupported-code",
            detail=f"syntax error: {exc.msg} (line {exc.lineno})",
        )
    func = solution_function(tree)
    if func is None:
        return TemplateFailure(
            id=tid, index=row.index, reason="unsupported-code", detail="no solution() function"
        )
    loops = [n for n in ast.walk(func) if isinstance(n, (ast.While, ast.For))]
    if loops:
        return TemplateFailure(
            id=tid,
            index=row.index,
            reason="unsupported-code",
            detail=f"loop at line {loops[0].lineno}: its run time would grow with the values",
        )
    mentions = find_mentions(row.input)
    doc = row.docstring or ""
    doc_mentions = find_mentions(doc)
    pairs = pair_mentions(row.input, mentions, doc, doc_mentions)
    doc_values = {i: doc_mentions[j].value for i, j in pairs.items()}
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    result = align(row.input, mentions, doc_values, find_literals(func), names)
    if isinstance(result, AlignmentFailure):
        return TemplateFailure(id=tid, index=row.index, reason=result.reason, detail=result.detail)
    return _Draft(row, result, mentions, doc_mentions, pairs)


async def _run(sandbox: CodeRunner, code: str, kwargs: dict[str, Any], entry: str) -> Any:
    return await sandbox.call(code, kwargs, entry=entry)


def _fail(row: GsmHardRow, reason: str, detail: str) -> TemplateFailure:
    return TemplateFailure(
        id=_template_id(row.index), index=row.index, reason=reason, detail=detail
    )


def _description(text: str) -> str:
    words = " ".join(text.split())
    return words if len(words) <= 70 else words[:67].rsplit(" ", 1)[0] + "..."


async def _verify(
    draft: _Draft, sandbox: CodeRunner, gsm8k_answer: float | None
) -> Template | TemplateFailure:
    row = draft.row
    if not math.isfinite(row.target):
        return _fail(row, "non-numeric-target", f"target is {row.target}")
    try:
        original = await _run(sandbox, row.code, {}, "solution")
    except SandboxError as exc:
        return _fail(row, "code-error", str(exc))
    if not _is_number(original):
        return _fail(row, "non-numeric-target", f"solution() returned {original!r}")
    if abs(float(original) - row.target) > _TOL:
        return _fail(
            row, "target-mismatch", f"solution() returns {original!r}, target {row.target!r}"
        )
    rows: list[dict[str, Any]] = [draft.originals()]
    check_gsm8k = draft.gsm8k_values is not None and gsm8k_answer is not None
    if check_gsm8k and draft.gsm8k_values is not None:
        rows.append(dict(draft.gsm8k_values))
    try:
        traces = await sandbox.call(batch_program(draft.code), {"rows": rows}, entry=BATCH_ENTRY)
    except SandboxError as exc:
        return _fail(row, "template-mismatch", f"template code fails in the sandbox: {exc}")
    if not isinstance(traces, list) or len(traces) != len(rows):
        return _fail(row, "template-mismatch", f"template returned {traces!r}")
    hard = traces[0]
    if "error" in hard:
        return _fail(row, "template-mismatch", f"template raises: {hard['error']}")
    if abs(float(hard["result"]) - row.target) > _TOL:
        return _fail(
            row,
            "template-mismatch",
            f"template gives {hard['result']!r} with the originals, target {row.target!r}",
        )
    reference, ref_trace = "gsm-hard", hard
    if check_gsm8k and gsm8k_answer is not None:
        old = traces[1]
        res = old.get("result")
        if "error" in old or abs(float(res) - gsm8k_answer) > _TOL:
            got = old.get("error", res)
            return _fail(
                row,
                "gsm8k-mismatch",
                f"with GSM8K's numbers the code gives {got!r}, GSM8K says {gsm8k_answer:g}",
            )
        reference, ref_trace = "gsm8k", old
    ref_value = float(ref_trace["result"])
    variables = ref_trace.get("vars") or {}
    intermediates = tuple(
        Intermediate(
            name=name,
            value=float(v),
            nonnegative=float(v) >= 0,
            integral=abs(float(v) - round(float(v))) <= 1e-9,
        )
        for name, v in variables.items()
        if _is_number(v)
    )
    answer_integral = abs(ref_value - round(ref_value)) <= 1e-9
    return Template(
        id=_template_id(row.index),
        index=row.index,
        description=_description(row.input),
        text=draft.text,
        code=draft.code,
        params=tuple(draft.params),
        target=row.target,
        gsm8k_answer=gsm8k_answer,
        reference=reference,
        answer_integral=answer_integral,
        answer_decimals=0 if answer_integral else max(2, min(_decimals_in(ref_value), 4)),
        intermediates=intermediates,
    )


async def templatise_async(
    row: GsmHardRow | Mapping[str, Any],
    index: int | None = None,
    *,
    sandbox: CodeRunner,
    gsm8k_answer: float | None = None,
) -> Template | TemplateFailure:
    """Templatise one GSM-Hard row, verifying it in ``sandbox``.

    Args:
        row: A :class:`GsmHardRow` or a mapping with ``input``, ``code``, ``target``.
        index: The row index (gives the template id); defaults to ``row.index``.
        sandbox: Where code runs (a ``SandboxPool``); row code is never run in-process.
        gsm8k_answer: GSM8K's answer for the original wording; enables the second check.

    Returns:
        The template, or a failure with a reason code from :data:`FAILURE_REASONS`.
    """
    r = _as_row(row, index)
    draft = analyse(r)
    if isinstance(draft, TemplateFailure):
        return draft
    return await _verify(draft, sandbox, gsm8k_answer)


def templatise(
    row: GsmHardRow | Mapping[str, Any],
    index: int | None = None,
    *,
    sandbox: CodeRunner | None = None,
    gsm8k_answer: float | None = None,
) -> Template | TemplateFailure:
    """Synchronous :func:`templatise_async`; opens a one-worker sandbox when none is given.

    Must not be called from a running event loop (use :func:`templatise_async` there).
    """

    async def main() -> Template | TemplateFailure:
        if sandbox is not None:
            return await templatise_async(row, index, sandbox=sandbox, gsm8k_answer=gsm8k_answer)
        from sgde.runtime.sandbox import SandboxPool

        async with SandboxPool(workers=1) as pool:
            return await templatise_async(row, index, sandbox=pool, gsm8k_answer=gsm8k_answer)

    return run_sync(main(), name="templatise", use_instead="templatise_async(...)")


def gsm8k_answers_by_question(questions: Iterable[tuple[str, float]]) -> dict[str, float]:
    """Index GSM8K answers by whitespace-normalised question text."""
    return {" ".join(q.split()): a for q, a in questions}


async def templatise_many(
    rows: Sequence[GsmHardRow],
    *,
    sandbox: CodeRunner,
    gsm8k: Mapping[str, float] | None = None,
    concurrency: int = 8,
) -> list[Template | TemplateFailure]:
    """Templatise many rows concurrently (bounded), in input order.

    Args:
        rows: GSM-Hard rows.
        sandbox: Where code runs.
        gsm8k: GSM8K answers by whitespace-normalised question
            (:func:`gsm8k_answers_by_question`); the docstring of each row is looked up.
        concurrency: Rows in flight at once.
    """
    sem = asyncio.Semaphore(max(1, concurrency))
    answers = gsm8k or {}

    async def one(row: GsmHardRow) -> Template | TemplateFailure:
        async with sem:
            answer = answers.get(" ".join((row.docstring or "").split()))
            return await templatise_async(row, sandbox=sandbox, gsm8k_answer=answer)

    return list(await asyncio.gather(*(one(r) for r in rows)))


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
        wanted = _template_id(int(wanted))
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
