"""Where a parameter's value stands in the training rows' texts, with the values masked.

For an extraction field, the words around its value in a training row ("ducks lay ___ eggs
per day") tell a small student which value to copy far better than a description when the
new text is phrased like the training rows. The value itself must never reach the prompt (a
tiny student copies a number it is shown), so the field's own value becomes ``___``, every
other number ``N`` and the other parameters' words and dates ``…``.

:func:`value_contexts` reads them for every training row where the value occurs exactly once
in the text inputs; the extraction-node variants (offload operator) use them and the
student's measured error decides whether they help.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from sgde.optimize.lift import snippet
from sgde.optimize.sources.mentions import TextMentions, read_mentions
from sgde.runtime.numbers import numbers_match
from sgde.task import FieldType, TaskSpec

__all__ = ["masked_context", "value_contexts"]

_Span = tuple[int, int]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _spans(tm: TextMentions, value: Any) -> list[_Span]:
    """Where ``value`` is written in the text (numbers and dates by their mentions)."""
    if _is_number(value):
        return [(m.start, m.end) for m in tm.numbers if numbers_match(m.value, value)]
    if not isinstance(value, str) or not value.strip():
        return []
    dates = [(m.start, m.end) for m in tm.dates if m.value == value]
    if dates:
        return dates
    pattern = re.compile(rf"(?<!\w){re.escape(value.strip())}(?!\w)", re.IGNORECASE)
    return [(m.start(), m.end()) for m in pattern.finditer(tm.text)]


def masked_context(tm: TextMentions, own: _Span, others: Sequence[_Span]) -> str:
    """The words around ``own`` with it shown as ``___``, the ``others`` spans as ``…``
    and every other number as ``N``."""
    marks: list[tuple[int, int, str]] = [(own[0], own[1], "___")]
    marks += [(s, e, "…") for s, e in others]
    marks += [(m.start, m.end, "N") for m in tm.numbers]
    kept: list[tuple[int, int, str]] = []
    for start, end, text in marks:  # the own span first, then the others: earlier wins
        if all(end <= s or start >= e for s, e, _ in kept):
            kept.append((start, end, text))
    kept.sort()
    parts: list[str] = []
    last = 0
    at = 0
    for start, end, text in kept:
        parts.append(tm.text[last:start])
        if text == "___":
            at = sum(len(p) for p in parts)
        parts.append(text)
        last = end
    parts.append(tm.text[last:])
    return snippet("".join(parts), at, at + 3)


def value_contexts(
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    params: Mapping[str, FieldType],
    values: Sequence[Mapping[str, Any] | None],
) -> dict[str, list[str]]:
    """Per param of ``params``, the distinct masked contexts of its value in the training
    rows' text inputs, in row order (a row where the value is not written exactly once in
    the texts gives none). Lists and numbers read from non-text inputs have no context."""
    out: dict[str, list[str]] = {name: [] for name in params}
    text_fields = [n for n, t in task.inputs.items() if t.kind == "string"]
    for row, vals in zip(rows, values, strict=False):
        if vals is None:
            continue
        texts = [read_mentions(row[n]) for n in text_fields if isinstance(row.get(n), str)]
        for name in params:
            value = vals.get(name)
            if value is None or isinstance(value, (list, dict, bool)):
                continue
            hits = [(tm, span) for tm in texts for span in _spans(tm, value)]
            if len(hits) != 1:
                continue
            tm, own = hits[0]
            others = [
                span
                for other, v in vals.items()
                if other != name and isinstance(v, str)
                for span in _spans(tm, v)
            ]
            text = masked_context(tm, own, others)
            if text not in out[name]:
                out[name].append(text)
    return out
