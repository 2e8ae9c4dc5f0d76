"""Numbers as written in problem text: digits ("$1,500.00", "20%") and words ("three").

Used by the templatiser to find the numbers of a GSM-Hard question and to pair them with the
numbers of the original GSM8K wording (the docstring of the row's code).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

__all__ = ["Mention", "find_mentions", "pair_mentions"]

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}

_WORD = (
    r"(?:(?:"
    + "|".join(_TENS)
    + r")(?:-(?:"
    + "|".join(k for k in _UNITS if _UNITS[k] < 10)
    + r"))?|"
    + "|".join(sorted(_UNITS, key=len, reverse=True))
    + r")"
)
_TOKEN = re.compile(
    r"(?P<time>(?<![\w.])\d{1,2}:\d{2}(?!\d))"
    r"|(?P<frac>(?<![\w.])\d+/\d+(?:st|nd|rd|th|ths)?(?![\d]))"
    r"|(?P<num>(?<![\w.,])(?:\d{1,3}(?:,\d{3})+(?![\d,])|\d+|(?=\.\d))(?:\.\d+)?(?![\d]))"
    r"(?P<suffix>st|nd|rd|th)?"
    rf"|(?P<word>\b{_WORD}(?:\s+(?:hundred|thousand|million))?\b)",
    re.IGNORECASE,
)
_FRACTION_WORD = re.compile(
    r"[- ](?:halves|half|thirds?|quarters?|fourths?|fifths?|sixths?|sevenths?|eighths?|ninths?"
    r"|tenths?)\b",
    re.IGNORECASE,
)
_PERCENT = re.compile(r"\s?(?:%|percent\b|per cent\b)", re.IGNORECASE)


@dataclass(frozen=True)
class Mention:
    """One number written in a text.

    Attributes:
        start: Start offset of the number itself (currency signs and ``%`` stay outside).
        end: End offset (exclusive).
        text: The written form, e.g. ``"1,500.00"`` or ``"three"``.
        value: Its value (a percentage keeps its written value: "20%" -> 20).
        kind: ``"digits"`` or ``"word"``.
        decimals: Digits after the decimal point as written.
        percent: Followed by ``%`` / ``percent``.
        money: Preceded by a currency sign.
        slot: Whether the number may become a template slot. Ordinals ("3rd"), clock times,
            fractions, malformed numbers and the values 0 and 1 (which mostly carry grammar,
            "1 week", "one of them") stay fixed text.
        malformed: Looks like a number broken by GSM-Hard's string replacement (e.g.
            ``"$1,9999999"``, ``"forty-999999"``, float noise such as ``"0.5000000000000001"``).
    """

    start: int
    end: int
    text: str
    value: float
    kind: str
    decimals: int
    percent: bool
    money: bool
    slot: bool
    malformed: bool


def _word_value(text: str) -> float:
    parts = text.lower().split()
    base_word = parts[0]
    if "-" in base_word:
        tens, unit = base_word.split("-")
        base = _TENS[tens] + _UNITS[unit]
    else:
        base = _TENS.get(base_word, _UNITS.get(base_word, 0))
    if len(parts) > 1:
        base *= _SCALES[parts[-1]]
    return float(base)


def find_mentions(text: str) -> list[Mention]:
    """Find every number written in ``text``, in order.

    Args:
        text: A problem statement.

    Returns:
        The mentions; fixed ones (``slot=False``) included, so that positions line up when
        two wordings of the same problem are compared.
    """
    out: list[Mention] = []
    for m in _TOKEN.finditer(text):
        start, end = m.span()
        money = start > 0 and text[start - 1] in "$€£"
        if m.group("time") or m.group("frac"):
            out.append(Mention(start, end, m.group(), 0.0, "digits", 0, False, money, False, False))
            continue
        if m.group("word"):
            written = m.group("word")
            value = _word_value(written)
            after = text[end:]
            pct = bool(_PERCENT.match(after))
            fraction = bool(_FRACTION_WORD.match(after))
            out.append(
                Mention(
                    start,
                    end,
                    written,
                    value,
                    "word",
                    0,
                    pct,
                    money,
                    value > 1 and not fraction,
                    False,
                )
            )
            continue
        written = m.group("num")
        end = m.end("num")
        ordinal = m.group("suffix") is not None
        value = float(written.replace(",", ""))
        decimals = len(written.split(".", 1)[1]) if "." in written else 0
        before = text[max(0, start - 8) : start]
        after = text[end:]
        malformed = (
            decimals > 4 or bool(re.search(r"[A-Za-z]-$", before)) or bool(re.match(r",\d", after))
        )
        pct = bool(_PERCENT.match(after))
        slot = not ordinal and not malformed and value not in (0.0, 1.0)
        out.append(
            Mention(start, end, written, value, "digits", decimals, pct, money, slot, malformed)
        )
    return out


def _skeleton(text: str, mentions: list[Mention]) -> list[str]:
    """Tokens of ``text`` with each mention replaced by a marker token ``<N>``."""
    tokens: list[str] = []
    pos = 0
    for m in mentions:
        tokens += re.findall(r"\w+|[^\w\s]", text[pos : m.start])
        tokens.append("<N>")
        pos = m.end
    tokens += re.findall(r"\w+|[^\w\s]", text[pos:])
    return tokens


def pair_mentions(a_text: str, a: list[Mention], b_text: str, b: list[Mention]) -> dict[int, int]:
    """Pair the mentions of two wordings of one problem (index in ``a`` -> index in ``b``).

    The texts are compared as token sequences with every number replaced by a marker;
    numbers in equal stretches, and in same-length replaced stretches, are paired in order.
    """
    sa, sb = _skeleton(a_text, a), _skeleton(b_text, b)
    ia = [i for i, t in enumerate(sa) if t == "<N>"]
    ib = [i for i, t in enumerate(sb) if t == "<N>"]
    pos_a = {tok: k for k, tok in enumerate(ia)}
    pos_b = {tok: k for k, tok in enumerate(ib)}
    pairs: dict[int, int] = {}
    matcher = SequenceMatcher(a=sa, b=sb, autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal" or (op == "replace" and a1 - a0 == b1 - b0):
            for k in range(a1 - a0):
                if sa[a0 + k] == "<N>" and sb[b0 + k] == "<N>":
                    pairs[pos_a[a0 + k]] = pos_b[b0 + k]
        elif op == "replace":
            na = [i for i in range(a0, a1) if sa[i] == "<N>"]
            nb = [i for i in range(b0, b1) if sb[i] == "<N>"]
            if len(na) == len(nb):
                for x, y in zip(na, nb, strict=True):
                    pairs[pos_a[x]] = pos_b[y]
    return pairs
