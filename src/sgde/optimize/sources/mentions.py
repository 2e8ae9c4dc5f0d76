"""Typed values mentioned in an input text: numbers, dates, quoted strings and words.

A deterministic reader used to find where a literal of a verified solution came from, and
to align another row's values by position. Digits inside a date belong to the date, not to
the numbers of the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sgde.optimize.lift import find_numbers
from sgde.task.types import TaskValueError, parse_date

__all__ = ["Mention", "TextMentions", "read_mentions"]

_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_DATE_RE = re.compile(
    rf"\b(?:\d{{4}}-\d{{1,2}}-\d{{1,2}}|\d{{4}}/\d{{1,2}}/\d{{1,2}}"
    rf"|{_MONTH}\s+{_DAY},?\s+\d{{4}}|{_DAY}\s+(?:of\s+)?{_MONTH},?\s+\d{{4}})\b",
    re.IGNORECASE,
)
_QUOTED_RE = re.compile(
    r"\"([^\"\n]{1,80})\"|“([^”\n]{1,80})”|(?<!\w)'([^'\n]{1,40})'(?!\w)|‘([^’\n]{1,40})’"
)
_WORD_RE = re.compile(r"[^\W\d_](?:[\w-]|'(?=\w))*", re.UNICODE)


@dataclass(frozen=True)
class Mention:
    """One typed value in a text."""

    kind: str  # "number" | "date" | "quoted" | "word"
    value: Any
    start: int
    end: int
    percent: bool = False


@dataclass(frozen=True)
class TextMentions:
    """The mentions of one text, by kind, in text order."""

    text: str
    numbers: tuple[Mention, ...]
    dates: tuple[Mention, ...]
    quoted: tuple[Mention, ...]
    words: tuple[Mention, ...]

    def of_kind(self, kind: str) -> tuple[Mention, ...]:
        """The mentions of ``kind``."""
        return {
            "number": self.numbers,
            "date": self.dates,
            "quoted": self.quoted,
            "word": self.words,
        }[kind]


def read_mentions(text: str) -> TextMentions:
    """Read the numbers, dates, quoted strings and words of ``text``."""
    dates: list[Mention] = []
    for m in _DATE_RE.finditer(text):
        try:
            iso = parse_date(m.group(0)).isoformat()
        except TaskValueError:
            continue
        dates.append(Mention("date", iso, m.start(), m.end()))

    def in_date(start: int, end: int) -> bool:
        return any(d.start <= start and end <= d.end for d in dates)

    numbers = tuple(
        Mention("number", n.value, n.start, n.end, n.percent)
        for n in find_numbers(text)
        if not in_date(n.start, n.end)
    )
    quoted = []
    for m in _QUOTED_RE.finditer(text):
        group = next(g for g in range(1, 5) if m.group(g) is not None)
        quoted.append(Mention("quoted", m.group(group), m.start(group), m.end(group)))
    words = tuple(
        Mention("word", m.group(0), m.start(), m.end())
        for m in _WORD_RE.finditer(text)
        if not in_date(m.start(), m.end())
    )
    return TextMentions(text, numbers, tuple(dates), tuple(quoted), words)
