"""The templatiser: a GSM-Hard row turned into a :class:`~sgde.evaluation.gsm.templates.Template`.

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

Templatising all 1,319 rows takes ~4,000 sandbox calls, so ``scripts/build_templates.py``
runs :func:`templatise_many` once and writes the vendored file that
:func:`~sgde.evaluation.gsm.templates.load_templates` reads.
"""

from __future__ import annotations

import ast
import asyncio
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sgde.errors import SandboxError
from sgde.evaluation.gsm._align import (
    BATCH_ENTRY,
    Alignment,
    AlignmentFailure,
    align,
    batch_program,
    build_code,
    build_text,
    find_literals,
    solution_function,
)
from sgde.evaluation.gsm._mentions import Mention, find_mentions, pair_mentions
from sgde.evaluation.gsm.datasets import GsmHardRow
from sgde.evaluation.gsm.templates import (
    Intermediate,
    Param,
    Template,
    TemplateFailure,
    format_number,
    template_id_for,
)
from sgde.runtime.calls import CodeRunner
from sgde.runtime.sync import run_sync

__all__ = [
    "analyse",
    "gsm8k_answers_by_question",
    "templatise",
    "templatise_async",
    "templatise_many",
]

_TOL = 1e-6


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
    tid = template_id_for(row.index)
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
        id=template_id_for(row.index), index=row.index, reason=reason, detail=detail
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
        id=template_id_for(row.index),
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
