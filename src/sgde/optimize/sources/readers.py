"""Deterministic readers: parser candidates sgde builds itself, without the teacher.

A reader says which typed mention of which text input a program parameter is
(:mod:`sgde.optimize.sources.reader_code`): the k-th number, date, quoted string or word
from the start or from the end (k < :data:`MAX_RANK`), the mention nearest after or before
an anchor word that stands next to the value in every training row, or every mention of a
kind as a list (all of them, those after/before an anchor word, or all but the first k
and/or the last j: a list whose length varies between rows, such as the repeated blocks of
a rolled lift). Numeric dates are read day-first or month-first; a number may be a
percentage read as a fraction. The class is small and fixed by the training rows; every
hypothesis examined is counted (``searched``) for the PAC statement — a larger class gives
a weaker bound.

A reader is kept only when it reproduces the field's lifted value on every training row and
on perturbed copies of them (:func:`~sgde.optimize.sources.parsers.perturbed_rows`: a value
that occurs once is replaced, and the reader must follow — one that reads a copy of the
value elsewhere is refused), evaluated in-process with the same standard-library code the
plan will run, and then again in the sandbox, which is the truth. The readers of several fields are
joined into one ``run(**task_inputs)``; fields no reader gets are left to the student (or
the teacher's parsers).

Identifiability: a few training rows may not tell two readers apart — on squares, "the
first number" and "the second number" both read the length and the width, and a value
that occurs twice in a text is not perturbed. Every reader that fits is therefore run on
probe rows: a training row with ONE mention that could be the value (of the field's kinds,
equal to it, also as a percentage) replaced by another value, one occurrence at a time, in
every text input. When two fitting readers disagree on a probe, the rows do not say which
mention the field is. Nor do they when a training row holds the value of a (non-list)
field in no text input exactly once: with two squares and one rectangle worded
length-first, only "the first number" fits, yet the squares are no evidence for it and a
width-first wording is misread. In both cases no reader is kept for the field (the student
keeps extracting it), and the event says why; otherwise the simplest fitting reader is
kept. A probe replaces a date by an ISO date, so the order of numeric dates is chosen by
the rows' unambiguous dates, not by this check.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from sgde.optimize.events import CompileEvent, EventSink, emit
from sgde.optimize.sources.context import row_inputs, value_text
from sgde.optimize.sources.parsers import Parser, number_text, perturbed_rows, reads
from sgde.optimize.sources.reader_code import ReaderRule, load_library, reader_program
from sgde.optimize.sources.verified import Program
from sgde.runtime.calls import CodeRunner
from sgde.task import FieldType, TaskSpec

__all__ = ["MAX_RANK", "ReaderSearch", "reader_candidates", "text_readers"]

MAX_RANK = 4
"""Ranks k tried for the ``index`` rule (``last`` and anchored rules try k < 2)."""

_ANCHOR_WINDOW = 3
"""Words each side of a value that may serve as its anchor."""

_SANDBOX_TRIES = 4
"""Hypotheses per field verified in the sandbox (in order) before the field is given up."""


@dataclass
class ReaderSearch:
    """What :func:`reader_candidates` found.

    Attributes:
        parsers: Verified parsers, best first: one reading every field it could, then
            (when that is not every field) nothing else — the caller asks the teacher.
        searched: Hypotheses examined on the training rows (for the PAC statement).
        rules: Field -> the reader chosen for it (described).
        missing: Fields no reader reproduces, or that the rows do not identify.
        unidentified: Field -> why the training rows do not identify its reader (two
            readers that fit them read different mentions); these fields are in ``missing``.
    """

    parsers: list[Parser] = field(default_factory=list)
    searched: int = 0
    rules: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unidentified: dict[str, str] = field(default_factory=dict)


def _kinds(ftype: FieldType) -> tuple[list[str], bool]:
    """Mention kinds a field of ``ftype`` can be read from, and whether it is a list."""
    is_list = ftype.kind == "list"
    item = ftype.item if is_list and ftype.item is not None else ftype
    kinds = {
        "integer": ["number"],
        "number": ["number"],
        "date": ["date"],
        "string": ["quoted", "word"],
        "enum": ["word", "quoted"],
    }.get(item.kind, [])
    return kinds, is_list


def _anchors(
    lib: Mapping[str, Any],
    texts: Sequence[str],
    golds: Sequence[Any],
    kind: str,
    day_first: bool,
    ftype: FieldType,
) -> tuple[list[str], list[str]]:
    """Words standing just before / just after the value in EVERY row (lower case).

    For a list, the words around its first item (before) and its last item (after)."""
    befores: list[set[str]] = []
    afters: list[set[str]] = []
    item = ftype.item if ftype.kind == "list" and ftype.item is not None else ftype
    for text, gold in zip(texts, golds, strict=True):
        mentions = lib["sgde_mentions"](text, day_first)
        words = [m for m in mentions if m[0] == "word"]
        if isinstance(gold, list):
            if not gold:
                return [], []
            first, last = gold[0], gold[-1]
        else:
            first = last = gold
        hits_first = [m for m in mentions if m[0] == kind and item.correct(m[1], first)]
        hits_last = [m for m in mentions if m[0] == kind and item.correct(m[1], last)]
        before: set[str] = set()
        after: set[str] = set()
        for m in hits_first:
            near = [w for w in words if w[3] <= m[2]][-_ANCHOR_WINDOW:]
            before.update(str(w[1]).lower() for w in near)
        for m in hits_last:
            near = [w for w in words if w[2] >= m[3]][:_ANCHOR_WINDOW]
            after.update(str(w[1]).lower() for w in near)
        befores.append(before)
        afters.append(after)
    common_before = sorted(set.intersection(*befores)) if befores else []
    common_after = sorted(set.intersection(*afters)) if afters else []
    return common_before, common_after


def _date_orders(lib: Mapping[str, Any], texts: Sequence[str]) -> tuple[bool, bool]:
    """Day-first and month-first, the order the texts' unambiguous numeric dates (a part
    over 12) show first; day-first on a tie."""
    day = month = 0
    for text in texts:
        for m in re.finditer(lib["SGDE_NUMERIC_DATE"], text):
            a, b = int(m.group(1)), int(m.group(3))
            day += a > 12 >= b
            month += b > 12 >= a
    return (False, True) if month > day else (True, False)


def _hypotheses(
    lib: Mapping[str, Any],
    task: TaskSpec,
    inputs: Sequence[Mapping[str, Any]],
    golds: Sequence[Any],
    ftype: FieldType,
) -> Iterator[ReaderRule]:
    """The bounded class of readers for one field, simplest first."""
    kinds, is_list = _kinds(ftype)
    item = ftype.item if is_list and ftype.item is not None else ftype
    for source, stype in task.inputs.items():
        if stype.kind != "string":
            continue
        texts = [r.get(source) for r in inputs]
        if not all(isinstance(t, str) for t in texts):
            continue
        strings = [str(t) for t in texts]
        for kind in kinds:
            orders = _date_orders(lib, strings) if kind == "date" else (True,)
            scales = (1.0, 0.01) if kind == "number" and item.kind == "number" else (1.0,)
            for day_first in orders:
                before, after = _anchors(lib, strings, golds, kind, day_first, ftype)
                for scale in scales:
                    base = ReaderRule(source, kind, "all", day_first=day_first, scale=scale)
                    if is_list:
                        yield base
                        yield replace(base, rule="longest_run")
                        for k in range(1, MAX_RANK):
                            yield replace(base, rule="all_but_first", k=k)
                            yield replace(base, rule="all_but_last", k=k)
                        for k in range(1, MAX_RANK):
                            yield from (
                                replace(base, rule="all_but_ends", k=k, last=j)
                                for j in range(1, MAX_RANK)
                            )
                        yield from (replace(base, rule="all_after", word=w) for w in before)
                        yield from (replace(base, rule="all_before", word=w) for w in after)
                        continue
                    yield from (replace(base, rule="index", k=k) for k in range(MAX_RANK))
                    yield from (replace(base, rule="last", k=k) for k in range(2))
                    for w in before:
                        yield from (replace(base, rule="after", k=k, word=w) for k in range(2))
                    for w in after:
                        yield from (replace(base, rule="before", k=k, word=w) for k in range(2))


def _fits(
    lib: Mapping[str, Any],
    rule: ReaderRule,
    cases: Sequence[tuple[Mapping[str, Any], Any]],
    ftype: FieldType,
) -> bool:
    """Whether ``rule`` reads the expected value of every ``(inputs, expected)`` case."""
    pick = lib["sgde_pick"]
    for row, gold in cases:
        value = pick(row.get(rule.source), *rule.as_tuple()[1:])
        if value is None or not ftype.correct(value, gold):
            return False
    return True


def _could_be(value: Any, gold: Any, item: FieldType, kind: str) -> bool:
    """Whether a mention's value could be the field's ``gold`` (or one of its items)."""
    golds = gold if isinstance(gold, list) else [gold]
    scales = (1.0, 0.01) if kind == "number" and item.kind == "number" else (1.0,)
    for g in golds:
        for scale in scales:
            read = round(value * scale, 12) if kind == "number" and scale != 1 else value
            if item.correct(read, g):
                return True
    return False


def _replacement(mention: tuple[Any, ...], text: str) -> str:
    """Another value written like ``mention`` (a number, an ISO date, a changed string)."""
    kind, value, start, end = mention[0], mention[1], mention[2], mention[3]
    like = text[start:end]
    if kind == "number":
        new = value + 7 if isinstance(value, int) else round(value * 1.5 + 1, 2)
        percent = like.endswith("%")
        return number_text(new, like.rstrip("%")) + ("%" if percent else "")
    if kind == "date":
        return (date.fromisoformat(value) + timedelta(days=1)).isoformat()
    return like + "x"


def _candidates(
    lib: Mapping[str, Any], task: TaskSpec, row: Mapping[str, Any], gold: Any, ftype: FieldType
) -> dict[str, list[tuple[Any, ...]]]:
    """Text input -> its mentions that could be the field's ``gold`` (of the field's kinds,
    equal to it or to one of its items, also as a percentage), in text order."""
    kinds, is_list = _kinds(ftype)
    item = ftype.item if is_list and ftype.item is not None else ftype
    out: dict[str, list[tuple[Any, ...]]] = {}
    for source, stype in task.inputs.items():
        text = row.get(source)
        if stype.kind != "string" or not isinstance(text, str):
            continue
        spans: dict[tuple[int, int], tuple[Any, ...]] = {}
        for day_first in (True, False) if "date" in kinds else (True,):
            for m in lib["sgde_mentions"](text, day_first):
                if m[0] in kinds and _could_be(m[1], gold, item, m[0]):
                    spans.setdefault((m[2], m[3]), m)
        out[source] = [spans[s] for s in sorted(spans)]
    return out


def _probes(
    lib: Mapping[str, Any],
    task: TaskSpec,
    inputs: Sequence[Mapping[str, Any]],
    golds: Sequence[Any],
    ftype: FieldType,
) -> list[tuple[int, dict[str, Any]]]:
    """``(training row, inputs)`` with one mention that could be the value replaced, one
    occurrence at a time, in every text input (see module)."""
    out: list[tuple[int, dict[str, Any]]] = []
    for i, (row, gold) in enumerate(zip(inputs, golds, strict=True)):
        for source, mentions in _candidates(lib, task, row, gold, ftype).items():
            text = str(row[source])
            for m in mentions:
                new = text[: m[2]] + _replacement(m, text) + text[m[3] :]
                out.append((i, {**row, source: new}))
    return out


def _unpinned(
    lib: Mapping[str, Any],
    task: TaskSpec,
    inputs: Sequence[Mapping[str, Any]],
    golds: Sequence[Any],
    ftype: FieldType,
) -> tuple[int, str, int] | None:
    """``(training row, input, mentions)`` of the first row where no text input holds the
    value of a (non-list) field exactly once: that row does not say which mention the field
    is, so a reader's fit there is no evidence (see module). ``None`` when every row does."""
    if ftype.kind == "list":
        return None
    for i, (row, gold) in enumerate(zip(inputs, golds, strict=True)):
        found = _candidates(lib, task, row, gold, ftype)
        if not any(len(ms) == 1 for ms in found.values()):
            source, ms = max(found.items(), key=lambda kv: len(kv[1]), default=("", []))
            return i, source, len(ms)
    return None


def _disagreement(
    lib: Mapping[str, Any],
    rules: Sequence[ReaderRule],
    probes: Sequence[tuple[int, dict[str, Any]]],
) -> tuple[ReaderRule, ReaderRule, int] | None:
    """The first fitting reader, another that reads differently on a probe, and the probe's
    training row; ``None`` when every reader reads every probe alike."""
    if len(rules) < 2:
        return None
    pick = lib["sgde_pick"]
    first = rules[0]
    for i, probe in probes:
        ours = pick(probe.get(first.source), *first.as_tuple()[1:])
        for other in rules[1:]:
            if pick(probe.get(other.source), *other.as_tuple()[1:]) != ours:
                return first, other, i
    return None


async def _verified(
    sandbox: CodeRunner,
    code: str,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    program: Program,
    fields: Sequence[str],
    known: Sequence[int],
) -> tuple[int, str]:
    """``(perturbed rows checked, "")`` when ``code`` reads ``fields`` right on every known
    training row and every perturbed row in the sandbox, else ``(0, why)``."""
    for i in known:
        values = program.values[i] or {}
        expected = {f: values[f] for f in fields}
        if not await reads(sandbox, code, row_inputs(task, rows[i]), expected, program):
            return 0, f"misread training row {i + 1} in the sandbox"
    checked = 0
    for changed, expected in perturbed_rows(
        task, [rows[i] for i in known], _only(program, known), fields
    ):
        if not await reads(sandbox, code, changed, expected, program):
            return 0, f"fails on a perturbed row ({value_text(expected, 80)})"
        checked += 1
    return checked, ""


def _only(program: Program, known: Sequence[int]) -> Program:
    """``program`` with the values of the ``known`` rows only (aligned with their rows)."""
    return replace(program, values=[program.values[i] for i in known])


@dataclass
class _FieldReaders:
    """The readers of one field that fit its training rows and their perturbed copies
    (in-process), identified; ``fitting`` is empty when none is, and ``why`` says why."""

    fitting: list[ReaderRule]
    searched: int
    fits: int
    why: str
    unidentified: str | None = None


def _field_readers(
    lib: Mapping[str, Any],
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    program: Program,
    known: Sequence[int],
    f: str,
) -> _FieldReaders:
    """The fitting, identified readers of field ``f`` of ``program``, simplest first (the
    in-process part of :func:`reader_candidates`; the sandbox check is the caller's)."""
    ftype = program.params[f]
    inputs = [row_inputs(task, rows[i]) for i in known]
    golds = [(program.values[i] or {})[f] for i in known]
    training = list(zip(inputs, golds, strict=True))
    perturbed = [
        (changed, expected[f])
        for changed, expected in perturbed_rows(
            task, [rows[i] for i in known], _only(program, known), [f]
        )
    ]
    why = ": no reader in the class reproduces it on every training row"
    fitting: list[ReaderRule] = []
    searched = 0
    for rule in _hypotheses(lib, task, inputs, golds, ftype):
        # The whole class is counted, also past the readers that fit: other training
        # rows could have chosen any of them.
        searched += 1
        if not _fits(lib, rule, training, ftype):
            continue
        if not _fits(lib, rule, perturbed, ftype):
            why = f": {rule.describe()} fits the training rows but not a perturbed copy"
            continue
        fitting.append(rule)
    fits = len(fitting)
    probes = _probes(lib, task, inputs, golds, ftype) if fits > 1 else []
    split = _disagreement(lib, fitting, probes)
    loose = _unpinned(lib, task, inputs, golds, ftype) if fitting else None
    unidentified: str | None = None
    if split is not None:
        one, other, i = split
        unidentified = (
            f"{one.describe()!r} and {other.describe()!r} both fit the training rows "
            f"(they read different mentions of training row {known[i] + 1})"
        )
    elif loose is not None:
        i, source, count = loose
        unidentified = (
            f"{fitting[0].describe()!r} fits, but training row {known[i] + 1} has the "
            f"value {value_text(golds[i], 40)} in {count} mentions of {source}, so it "
            f"does not say which one {f!r} is"
        )
    if unidentified is not None:
        return _FieldReaders([], searched, fits, f" not identified: {unidentified}", unidentified)
    return _FieldReaders(fitting, searched, fits, why)


def _known_rows(program: Program, rows: Sequence[Any], fields: Sequence[str]) -> list[int]:
    """Training rows where ``program`` has a value for every one of ``fields``."""
    known = [i for i, v in enumerate(program.values) if v is not None and i < len(rows)]
    return [i for i in known if all(f in (program.values[i] or {}) for f in fields)]


def text_readers(
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    program: Program,
    fields: Sequence[str],
) -> dict[str, str]:
    """Field -> the reader (described) that reads it from the text, for the ``fields`` of
    ``program`` whose value an identified reader reproduces on every training row and on
    the perturbed copies, checked in-process only (no sandbox, nothing counted: a parser
    built later is searched, counted and verified by :func:`reader_candidates`)."""
    fields = [f for f in fields if f in program.params and f not in program.raw_inputs]
    known = _known_rows(program, rows, fields)
    if not fields or not known or len(known) < len(rows):
        return {}
    lib = load_library()
    out: dict[str, str] = {}
    for f in fields:
        found = _field_readers(lib, task, rows, program, known, f)
        if found.fitting:
            out[f] = found.fitting[0].describe()
    return out


async def reader_candidates(
    sandbox: CodeRunner,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    program: Program,
    fields: Sequence[str],
    *,
    events: EventSink | None = None,
    iteration: int = 0,
) -> ReaderSearch:
    """Deterministic readers of ``fields`` verified on every training row (see module).

    Returns the search: at most one parser, reading every field some reader reproduces.
    """
    search = ReaderSearch()
    fields = [f for f in fields if f in program.params]
    known = _known_rows(program, rows, fields)
    names = list(task.inputs)
    if not fields or not known or not names:
        search.missing = list(fields)
        return search
    lib = load_library()
    chosen: dict[str, ReaderRule] = {}
    checked_total = 0
    for f in fields:
        found = _field_readers(lib, task, rows, program, known, f)
        search.searched += found.searched
        why = found.why
        if found.unidentified is not None:
            search.unidentified[f] = found.unidentified
        for rule in found.fitting[:_SANDBOX_TRIES]:
            code = reader_program(names, {f: rule})
            checked, problem = await _verified(sandbox, code, task, rows, program, [f], known)
            if problem:
                why = f": {rule.describe()}: {problem}"
                continue
            chosen[f] = rule
            checked_total += checked
            search.rules[f] = rule.describe()
            break
        if f not in chosen:
            search.missing.append(f)
        emit(
            events,
            CompileEvent(
                "supervision",
                iteration,
                f"reader for {f!r}" + (f": {search.rules[f]}" if f in chosen else why),
                data={
                    "source": "reader",
                    "field": f,
                    "searched": search.searched,
                    "fitting": found.fits,
                    "identified": f not in search.unidentified,
                },
            ),
        )
    if chosen:
        code = reader_program(names, chosen)
        checked, problem = await _verified(sandbox, code, task, rows, program, list(chosen), known)
        if problem:
            search.missing = list(fields)
            search.rules = {}
            emit(events, CompileEvent("supervision", iteration, f"joined readers: {problem}"))
        else:
            search.parsers.append(
                Parser(code, list(chosen), len(known), max(1, search.searched), checked)
            )
    return search
