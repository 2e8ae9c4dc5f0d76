"""The standard-library source of sgde's deterministic readers (emitted into parser nodes).

:func:`reader_library` is self-contained Python (``re`` and ``datetime`` only) that finds
the typed mentions of a text the way :func:`~sgde.optimize.sources.mentions.read_mentions`
does — its number, date, quoted-string and word patterns are those of the mention reader —
plus numeric dates (``24/03/2022``, ``03.24.2022``) read day-first or month-first (a
reader's parameter; the other order when the first gives no valid date). Dates come out as
ISO text. ``sgde_pick`` applies one reader rule; :func:`reader_program` adds a
``run(**task_inputs)`` that applies one rule per field.

The same text is executed in-process to enumerate the hypotheses and in the sandbox to
verify the chosen ones, so what is verified is exactly what the plan will run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sgde.optimize.lift import _NUMBER_RE
from sgde.optimize.sources.mentions import _DATE_RE, _QUOTED_RE, _WORD_RE

__all__ = ["RULES", "ReaderRule", "reader_library", "reader_program"]

RULES = (
    "index",
    "last",
    "after",
    "before",
    "all",
    "all_after",
    "all_before",
    "all_but_first",
    "all_but_last",
    "all_but_ends",
    "longest_run",
)
"""``index``/``last``: the k-th mention of the kind from the start/end; ``after``/``before``:
the k-th mention after/before the first occurrence of an anchor word (nearest first);
``all``, ``all_after``, ``all_before``: every mention of the kind (a list);
``all_but_first``/``all_but_last``: every mention but the first/last k (a list whose length
varies between texts that hold k other mentions of the kind before/after it);
``all_but_ends``: every mention but the first k and the last ``last`` ones;
``longest_run``: the longest run of consecutive mentions written as a list (between two of
them only commas, semicolons, "and"/"or" and the same short unit each time: ``3, 5 and 8``,
``65 °C; 90 °C``), the first on a tie; a list of any length with other mentions around it."""

_MONTH_NAMES = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
_MONTHS = {
    **{m: i + 1 for i, m in enumerate(_MONTH_NAMES)},
    **{m[:3]: i + 1 for i, m in enumerate(_MONTH_NAMES)},
    "sept": 9,
}
_NUMERIC_DATE = r"(?<![\d/.])(\d{1,2})([/.])(\d{1,2})\2(\d{4})(?![\d/]|\.\d)"
_ISO_TEXT = r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$"
_MONTH_FIRST = r"^([A-Za-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})$"
_DAY_FIRST = r"^(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?([A-Za-z]+)\.?,?\s+(\d{4})$"

_LIBRARY = '''import datetime
import re

SGDE_NUMBER = {number!r}
SGDE_DATE = {date!r}
SGDE_NUMERIC_DATE = {numeric_date!r}
SGDE_ISO_TEXT = {iso_text!r}
SGDE_MONTH_FIRST = {month_first!r}
SGDE_DAY_FIRST = {day_first!r}
SGDE_QUOTED = {quoted!r}
SGDE_WORD = {word!r}
SGDE_MONTHS = {months!r}


def sgde_iso(year, month, day):
    try:
        return datetime.date(year, month, day).isoformat()
    except ValueError:
        return None


def sgde_text_date(text):
    t = ' '.join(text.split()).rstrip('.')
    m = re.match(SGDE_ISO_TEXT, t)
    if m:
        return sgde_iso(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    m = re.match(SGDE_MONTH_FIRST, t)
    if m:
        mon, day, year = m.group(1), m.group(2), m.group(3)
    else:
        m = re.match(SGDE_DAY_FIRST, t)
        if not m:
            return None
        day, mon, year = m.group(1), m.group(2), m.group(3)
    month = SGDE_MONTHS.get(mon.lower())
    if month is None:
        return None
    return sgde_iso(int(year), month, int(day))


def sgde_mentions(text, day_first):
    """(kind, value, start, end, percent) of every mention of text, in text order per kind."""
    dates = []
    for m in re.finditer(SGDE_DATE, text, re.IGNORECASE):
        value = sgde_text_date(m.group(0))
        if value is not None:
            dates.append(('date', value, m.start(), m.end(), False))
    for m in re.finditer(SGDE_NUMERIC_DATE, text):
        if any(d[2] < m.end() and m.start() < d[3] for d in dates):
            continue
        a, b, year = int(m.group(1)), int(m.group(3)), int(m.group(4))
        first, second = (sgde_iso(year, b, a), sgde_iso(year, a, b))
        if not day_first:
            first, second = second, first
        value = first if first is not None else second
        if value is not None:
            dates.append(('date', value, m.start(), m.end(), False))
    dates.sort(key=lambda d: d[2])
    spans = [(d[2], d[3]) for d in dates]
    out = list(dates)
    for m in re.finditer(SGDE_NUMBER, text):
        if any(s <= m.start() and m.end() <= e for s, e in spans):
            continue
        whole, frac = m.group(1), m.group(2) or ''
        digits = whole.replace(',', '') + frac
        value = float(digits) if frac else int(digits)
        out.append(('number', value, m.start(), m.end(), bool(m.group(3))))
    for m in re.finditer(SGDE_QUOTED, text):
        for g in range(1, 5):
            if m.group(g) is not None:
                out.append(('quoted', m.group(g), m.start(g), m.end(g), False))
                break
    for m in re.finditer(SGDE_WORD, text):
        if not any(s <= m.start() and m.end() <= e for s, e in spans):
            out.append(('word', m.group(0), m.start(), m.end(), False))
    return out


def sgde_pick(text, kind, rule, k, word, day_first, scale, last=0):
    """The value one reader rule reads from text (None when it reads nothing)."""
    if not isinstance(text, str):
        return None
    mentions = sgde_mentions(text, day_first)
    found = [m for m in mentions if m[0] == kind]
    if word:
        anchors = [m for m in mentions if m[0] == 'word' and m[1].lower() == word]
        if not anchors:
            return None
        start, end = anchors[0][2], anchors[0][3]
        if rule in ('after', 'all_after'):
            found = [m for m in found if m[2] >= end]
        else:
            found = [m for m in found if m[3] <= start]
            if rule == 'before':
                found.reverse()
    values = [m[1] for m in found]
    if kind == 'number' and scale != 1:
        values = [round(v * scale, 12) for v in values]
    if rule in ('all', 'all_after', 'all_before'):
        return values
    if rule == 'longest_run':
        best, start, unit = (0, 0), 0, None
        for i in range(1, len(found) + 1):
            if i < len(found):
                gap = text[found[i - 1][3]:found[i][2]]
                words = gap.replace(',', ' ').replace(';', ' ').replace('&', ' ').split()
                gap = ' '.join(w for w in words if w.lower() not in ('and', 'or'))
                if len(gap) <= 12 and not any(c in gap for c in '.?!:') and unit in (None, gap):
                    unit = gap
                    continue
            if i - start > best[1] - best[0]:
                best = (start, i)
            start, unit = i, None
        return values[best[0]:best[1]] if best[1] - best[0] >= 2 else None
    if rule in ('all_but_first', 'all_but_last', 'all_but_ends'):
        first = k if rule != 'all_but_last' else 0
        drop = k if rule == 'all_but_last' else (last if rule == 'all_but_ends' else 0)
        if len(values) <= first + drop:
            return None
        return values[first:len(values) - drop]
    if rule == 'last':
        k = len(values) - 1 - k
    if k < 0 or k >= len(values):
        return None
    return values[k]
'''

_RUN = """

SGDE_READERS = {readers!r}


def run({signature}):
    inputs = {{{inputs}}}
    out = {{}}
    for name, reader in SGDE_READERS.items():
        source, kind, rule, k, word, day_first, scale, last = reader
        out[name] = sgde_pick(inputs.get(source), kind, rule, k, word, day_first, scale, last)
    return out
"""


@dataclass(frozen=True)
class ReaderRule:
    """One deterministic reader: which mention of which input a field is.

    Attributes:
        source: The task input it reads.
        kind: ``number``, ``date``, ``quoted`` or ``word``.
        rule: One of :data:`RULES`.
        k: The mention's rank (from the start, the end, or the anchor word).
        word: The anchor word (lower case; ``""`` for rules without one).
        day_first: Read numeric dates (``05/03/2024``) day first.
        scale: A number's factor (``0.01``: a percentage read as a fraction).
        last: Mentions dropped from the end (``all_but_ends``).
    """

    source: str
    kind: str
    rule: str
    k: int = 0
    word: str = ""
    day_first: bool = True
    scale: float = 1
    last: int = 0

    def as_tuple(self) -> tuple[str, str, str, int, str, bool, float, int]:
        """The form the emitted code reads."""
        return (
            self.source,
            self.kind,
            self.rule,
            self.k,
            self.word,
            self.day_first,
            self.scale,
            self.last,
        )

    def describe(self) -> str:
        """Words for the events and the edit summary."""
        nth = ("first", "second", "third", "fourth")[self.k] if self.k < 4 else f"{self.k + 1}th"
        what = {"quoted": "quoted string", "word": "word"}.get(self.kind, self.kind)
        if self.rule == "index":
            return f"the {nth} {what} of {self.source}"
        if self.rule == "last":
            return f"the {nth} {what} from the end of {self.source}"
        if self.rule in ("after", "before"):
            return f"the {nth} {what} {self.rule} the word {self.word!r} in {self.source}"
        if self.rule == "all":
            return f"every {what} of {self.source}"
        if self.rule in ("all_but_first", "all_but_last"):
            side = self.rule.rsplit("_", 1)[1]
            return f"every {what} of {self.source} but the {side} {self.k}"
        if self.rule == "all_but_ends":
            return f"every {what} of {self.source} but the first {self.k} and the last {self.last}"
        if self.rule == "longest_run":
            return f"the longest list of {what}s written in a run in {self.source}"
        side = self.rule.split("_")[1]
        return f"every {what} {side} the word {self.word!r} in {self.source}"


def reader_library() -> str:
    """The mention reader and ``sgde_pick`` as standard-library source (see module)."""
    return _LIBRARY.format(
        number=_NUMBER_RE.pattern,
        date=_DATE_RE.pattern,
        quoted=_QUOTED_RE.pattern,
        word=_WORD_RE.pattern,
        months=_MONTHS,
        numeric_date=_NUMERIC_DATE,
        iso_text=_ISO_TEXT,
        month_first=_MONTH_FIRST,
        day_first=_DAY_FIRST,
    )


def reader_program(inputs: Sequence[str], readers: Mapping[str, ReaderRule]) -> str:
    """``def run(**inputs) -> {field: value}`` applying one reader per field."""
    return (
        reader_library()
        + _RUN.format(
            readers={f: r.as_tuple() for f, r in readers.items()},
            signature=", ".join(inputs),
            inputs=", ".join(f"{n!r}: {n}" for n in inputs),
        ).rstrip()
        + "\n"
    )


def load_library() -> dict[str, Any]:
    """The library executed in a fresh namespace (sgde's own constant code, not model code)."""
    namespace: dict[str, Any] = {}
    exec(compile(reader_library(), "<sgde-reader>", "exec"), namespace)
    return namespace
