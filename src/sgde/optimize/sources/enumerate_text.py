"""Enumerative search over string transforms: the text counterpart of the numeric search.

The source of last resort for string outputs when the teacher's code verifies nowhere: a
row solution that parses the text (``message.split("from ")[1]``) has no literal to lift,
and whole-task code fits only the phrasings it saw. Here the candidates of a row are its
string inputs themselves and the mentions of its text inputs (words, quoted strings, dates,
numbers as written; :mod:`~sgde.optimize.sources.mentions`). A program ``f`` is a
composition of at most ``max_depth`` transforms of a small library (upper, lower, title,
capitalize, the first or last 1..4 characters, reversed, without punctuation); it fits when
in EVERY training row some candidate ``m`` gives ``f(m)`` equal to the gold under the
output's metric. Compositions are deduplicated by their values on the training candidates
(observational equivalence); ``searched`` counts every composition examined.

The best fit is the one equal to the gold exactly (not only under a case-folding metric),
then the shallowest, then a whole string input (read raw, no student call) before a
mention. Its param's expected value in a row is the candidate that fits there; a row where
several different candidates fit is resolved by an exact match or by the kind of mention the
other rows use, else the search refuses and says which row and which candidates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sgde.optimize.sources.context import row_inputs
from sgde.optimize.sources.enumerate import verify_found
from sgde.optimize.sources.mentions import read_mentions
from sgde.optimize.sources.verified import Program
from sgde.optimize.teacher import Teacher
from sgde.runtime.calls import CodeRunner
from sgde.task import FieldType, Metric, TaskSpec

__all__ = [
    "TextFunction",
    "TextSearch",
    "enumerative_text_program",
    "search_text_transforms",
    "text_functions",
]


_MAX_DEPTH = 2  # transforms in a composition: 1 + 14 + 14**2 = 211 hypotheses per source


def _strip_punctuation(s: str) -> str:
    return "".join(c for c in s if c.isalnum() or c.isspace())


def _first(k: int) -> Callable[[str], str]:
    return lambda s: s[:k]


def _last(k: int) -> Callable[[str], str]:
    return lambda s: s[-k:]


# name -> (function, code template over "{}")
_LIBRARY: dict[str, tuple[Callable[[str], str], str]] = {
    "upper": (str.upper, "{}.upper()"),
    "lower": (str.lower, "{}.lower()"),
    "title": (str.title, "{}.title()"),
    "capitalize": (str.capitalize, "{}.capitalize()"),
    **{f"first{k}": (_first(k), f"{{}}[:{k}]") for k in range(1, 5)},
    **{f"last{k}": (_last(k), f"{{}}[-{k}:]") for k in range(1, 5)},
    "reversed": (lambda s: s[::-1], "{}[::-1]"),
    "strip_punctuation": (
        _strip_punctuation,
        "''.join(c for c in {} if c.isalnum() or c.isspace())",
    ),
}


@dataclass(frozen=True)
class TextFunction:
    """A composition of library transforms, innermost first (``()``: the identity)."""

    steps: tuple[str, ...]

    def name(self, var: str = "x") -> str:
        """``upper(first3(x))``."""
        out = var
        for step in self.steps:
            out = f"{step}({out})"
        return out

    def apply(self, value: str) -> str:
        """The transform of ``value``."""
        for step in self.steps:
            value = _LIBRARY[step][0](value)
        return value

    def code(self, var: str) -> str:
        """A Python expression computing the transform of ``var``."""
        out = var
        for step in self.steps:
            out = _LIBRARY[step][1].format(out)
        return out


def text_functions(max_depth: int = 2) -> Iterator[TextFunction]:
    """The identity, then every composition of 1..``max_depth`` library transforms."""
    yield TextFunction(())
    level: list[tuple[str, ...]] = [()]
    for _ in range(max_depth):
        level = [(*steps, name) for steps in level for name in _LIBRARY]
        yield from (TextFunction(s) for s in level)


@dataclass(frozen=True)
class TextSearch:
    """The outcome of :func:`search_text_transforms`.

    Attributes:
        function: The chosen transform (``None``: nothing fits, or a row is ambiguous).
        choices: Per row, the index of the chosen candidate.
        searched: Compositions examined (hypotheses).
        fits: Distinct fitting compositions (ambiguity of the program).
        exact: Whether ``function`` gives the gold exactly on every row (not only under
            the metric).
        reason: Why nothing was chosen (empty when a function was).
    """

    function: TextFunction | None
    choices: tuple[int, ...]
    searched: int
    fits: int
    exact: bool = False
    reason: str = ""


@dataclass(frozen=True)
class _Fit:
    function: TextFunction
    order: int
    rows: tuple[tuple[int, ...], ...]  # per row, the fitting candidate indices
    exact_rows: tuple[tuple[int, ...], ...]  # per row, the exactly equal ones
    exact: bool


def _resolve(
    fit: _Fit, candidates: Sequence[Sequence[str]], kinds: Sequence[Sequence[str]] | None
) -> tuple[tuple[int, ...] | None, str]:
    """Per row, the one candidate that fits (see the module docstring), or why not."""

    def distinct(row: int, indices: Sequence[int]) -> list[int]:
        firsts: dict[str, int] = {}
        for k in indices:
            firsts.setdefault(candidates[row][k], k)
        return list(firsts.values())

    picks: list[int | None] = []
    for i, indices in enumerate(fit.rows):
        options = distinct(i, indices)
        if len(options) > 1 and fit.exact_rows[i]:
            options = distinct(i, fit.exact_rows[i])
        picks.append(options[0] if len(options) == 1 else None)
    if kinds is not None:
        used = {kinds[i][k] for i, k in enumerate(picks) if k is not None}
        for i, k in enumerate(picks):
            if k is None and used:
                options = [j for j in distinct(i, fit.rows[i]) if kinds[i][j] in used]
                picks[i] = options[0] if len(options) == 1 else None
    for i, k in enumerate(picks):
        if k is None:
            shown = ", ".join(repr(candidates[i][j]) for j in distinct(i, fit.rows[i])[:4])
            return None, (
                f"row {i + 1} is ambiguous: {shown} all give its gold under "
                f"{fit.function.name()}, so its expected value cannot be chosen"
            )
    return tuple(k for k in picks if k is not None), ""


def search_text_transforms(
    candidates: Sequence[Sequence[str]],
    golds: Sequence[str],
    *,
    fits: Callable[[int, str], bool],
    kinds: Sequence[Sequence[str]] | None = None,
    max_depth: int = 2,
) -> TextSearch:
    """The best transform ``f`` with ``fits(i, f(m))`` for some candidate ``m`` of every row.

    Args:
        candidates: Per row, its candidate strings.
        golds: Per row, the gold output (compared exactly for the ``exact`` preference).
        fits: ``fits(row, value)``, the output metric's judgement.
        kinds: Per row and candidate, its kind (``"word"``, ``"quoted"``…), used to resolve
            a row where several candidates fit.
        max_depth: Most transforms in a composition.
    """
    m = len(golds)
    if m < 2 or len(candidates) != m:
        return TextSearch(None, (), 0, 0, reason="the search needs at least two training rows")
    if len({" ".join(str(g).split()).casefold() for g in golds}) == 1:
        return TextSearch(
            None, (), 0, 0, reason="every row has the same gold: a constant, not a transform"
        )
    seen: set[tuple[tuple[str, ...], ...]] = set()
    found: list[_Fit] = []
    searched = 0
    for order, f in enumerate(text_functions(max_depth)):
        searched += 1
        outs = tuple(tuple(f.apply(c) for c in row) for row in candidates)
        if outs in seen:
            continue
        seen.add(outs)
        rows = tuple(tuple(k for k, v in enumerate(outs[i]) if fits(i, v)) for i in range(m))
        if not all(rows):
            continue
        exact_rows = tuple(tuple(k for k in rows[i] if outs[i][k] == golds[i]) for i in range(m))
        found.append(_Fit(f, order, rows, exact_rows, all(exact_rows)))
    if not found:
        return TextSearch(
            None,
            (),
            searched,
            0,
            reason=f"no composition of <= {max_depth} transforms fits every row",
        )
    best = min(found, key=lambda x: (not x.exact, len(x.function.steps), x.order))
    choices, why = _resolve(best, candidates, kinds)
    if choices is None:
        return TextSearch(None, (), searched, len(found), reason=why)
    return TextSearch(best.function, choices, searched, len(found), best.exact)


def _mentions(text: str) -> list[tuple[str, str]]:
    """``(value, kind)`` of the mentions of ``text``: words, quoted strings, dates and
    numbers as written, each distinct value once."""
    tm = read_mentions(text)
    out: dict[str, str] = {}
    for w in tm.words:
        out.setdefault(w.value, "word")
    for q in tm.quoted:
        out.setdefault(q.value, "quoted")
    for d in tm.dates:
        out.setdefault(str(d.value), "date")
    for n in tm.numbers:
        out.setdefault(text[n.start : n.end], "number")
    return list(out.items())


@dataclass(frozen=True)
class _Choice:
    output: str
    param: str
    function: TextFunction
    values: list[str]
    raw: str | None  # the input field read verbatim
    description: str


async def enumerative_text_program(
    teacher: Teacher,
    sandbox: CodeRunner,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    metric: Metric,
    *,
    budget: Any,
    log: Callable[..., None],
) -> Any:
    """A :class:`~sgde.optimize.sources.programs.Program` of origin ``enumerative``, or None.

    Applicable when every output is a string and some input is a string. ``teacher`` is
    not called here: the extracted param is described by the caller (``describe_params``).
    """

    del teacher, budget  # the numeric source's signature; this search is small and bounded
    if any(t.kind != "string" for t in task.outputs.values()):
        log("enumerative-text", "not applicable: an output is not a string")
        return None
    texts = [n for n, t in task.inputs.items() if t.kind == "string"]
    if not texts:
        log("enumerative-text", "not applicable: no input is a string")
        return None
    inputs = [row_inputs(task, r) for r in rows]
    searched = 0
    chosen: list[_Choice] = []
    for n_out, (out_name, ftype) in enumerate(task.outputs.items()):
        golds = [str(r.get(out_name, "")) for r in rows]

        def fits(i: int, v: str, ftype: FieldType = ftype, name: str = out_name) -> bool:
            return ftype.correct(v, rows[i].get(name))

        # sources: each string input read whole (raw), then the mentions of all of them
        sources: list[tuple[str | None, list[list[tuple[str, str]]]]] = [
            (n, [[(x[n], "whole")] if isinstance(x.get(n), str) else [] for x in inputs])
            for n in texts
        ]
        sources.append(
            (
                None,
                [
                    [m for n in texts if isinstance(x.get(n), str) for m in _mentions(x[n])]
                    for x in inputs
                ],
            )
        )
        results: list[tuple[tuple[bool, int, int], str | None, TextSearch, list[list[str]]]] = []
        reasons: list[str] = []
        for k, (raw, cands) in enumerate(sources):
            values = [[v for v, _ in row] for row in cands]
            result = search_text_transforms(
                values,
                golds,
                fits=fits,
                kinds=[[kind for _, kind in row] for row in cands],
                max_depth=_MAX_DEPTH,
            )
            searched += result.searched
            if result.function is None:
                reasons.append(f"{raw or 'mentions'}: {result.reason}")
                continue
            key = (not result.exact, len(result.function.steps), k)
            results.append((key, raw, result, values))
        if not results:
            log(
                "enumerative-text",
                f"nothing fits {out_name!r} ({searched} examined): " + "; ".join(reasons),
                searched=searched,
            )
            return None
        _, raw, best, values = min(results, key=lambda r: r[0])
        assert best.function is not None
        param = raw if raw is not None else f"string_{n_out + 1}"
        picked = [values[i][k] for i, k in enumerate(best.choices)]
        where = " or ".join(texts)
        chosen.append(
            _Choice(
                out_name,
                param,
                best.function,
                picked,
                raw,
                f"the input {raw}"
                if raw is not None
                # short: the teacher often hands it back as its description, and a
                # longer one (the task's text added) failed the describe schema and made
                # the student's extraction worse on the city task
                else f"the word or phrase of the {where} that {out_name} is made from "
                f"({out_name} = {best.function.name('it')})",
            )
        )
        log(
            "enumerative-text",
            f"{best.function.name(param)} fits {len(rows)}/{len(rows)} rows for {out_name!r} "
            f"({best.searched} examined, {best.fits} fitting)",
            searched=searched,
        )
    params = list(dict.fromkeys(c.param for c in chosen))
    body = ", ".join(f"{c.output!r}: {c.function.code(c.param)}" for c in chosen)
    code = f"def run({', '.join(params)}):\n    return {{{body}}}\n"
    final: list[dict[str, Any] | None] = [
        {c.param: c.values[i] for c in chosen} for i in range(len(rows))
    ]
    # Two outputs reading the same raw input agree by construction; two mentions never
    # share a param (string_1, string_2…).
    verified = await verify_found(
        sandbox,
        task,
        rows,
        metric,
        code,
        final,
        source="enumerative-text",
        found="; ".join(f"{c.output} = {c.function.name(c.param)}" for c in chosen),
        searched=searched,
        log=log,
    )
    if verified is None:
        return None
    return Program(
        code=code,
        params={p: FieldType(kind="string") for p in params},
        values=final,
        raw_inputs={c.param: c.raw for c in chosen if c.raw is not None},
        descriptions={c.param: c.description for c in chosen},
        origin="enumerative",
        searched=searched,
        verified_rows=verified,
    )
