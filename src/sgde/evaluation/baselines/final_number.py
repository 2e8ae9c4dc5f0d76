"""Deterministic final-answer extraction from free text (chain-of-thought replies).

This module is self-contained on purpose: its source is also the ``code`` of the
``extract`` code node that ends every chain-of-thought baseline plan, so it runs in the
sandbox. It therefore imports only ``re``, avoids dunder names and defines ``run``.

Rules, in order (the first that yields a number wins):

1. The last answer marker — ``answer is``, ``answer:``, ``answer =``, ``final answer``,
   ``####`` or ``\\boxed{...}`` (case-insensitive). From the text after it up to the end
   of that line or sentence, take the *first* number, or the *last* one when that segment
   contains ``=`` (``The answer is 5 + 3 = 8`` gives 8).
2. Otherwise the last number anywhere in the text.

A number is ``-1,234.5``-like: an optional sign directly attached (``5-3`` is a
subtraction, not ``-3``), an optional currency sign (``$``, ``€``, ``£``), digits with
optional ``,`` thousands groups (``1,234,567``; ``1,2`` is two numbers), an optional
decimal part and an optional exponent (``1.5e6``). A trailing full stop ends a sentence,
not a decimal part (``12.`` is 12). Percent signs are ignored (``50%`` is 50).
"""

import re

NUMBER_PATTERN = re.compile(
    r"(?<![\w.])"
    r"(?P<sign>[-\u2212+]?)"
    r"[$\u20ac\u00a3]?"
    r"(?P<sign2>[-\u2212]?)"
    r"(?P<body>\d{1,3}(?:,\d{3})+(?!\d)|\d+)"
    r"(?P<frac>\.\d+)?"
    r"(?P<exp>[eE][-+]?\d+)?"
)
MARKER_PATTERN = re.compile(
    r"(?:final\s+answer|answer)\s*(?:is|was|would\s+be|will\s+be|equals|:|=)?\s*[:=]?"
    r"|####"
    r"|\\boxed\{",
    re.IGNORECASE,
)
SEGMENT_END = re.compile(r"\n|\.(?=\s|$)(?<!\d\.)|\.\s|;")


def number_at(match: "re.Match[str]") -> float | None:
    """Convert one ``NUMBER_PATTERN`` match to a float.

    Args:
        match: A match of :data:`NUMBER_PATTERN`.

    Returns:
        The number, or None when it does not convert.
    """
    negative = match.group("sign") in ("-", "\u2212") or match.group("sign2") in ("-", "\u2212")
    text = match.group("body").replace(",", "") + (match.group("frac") or "")
    text += match.group("exp") or ""
    try:
        value = float(text)
    except ValueError:
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return -value if negative else value


def numbers_in(text: str) -> list[float]:
    """All numbers in ``text``, in order of appearance.

    Args:
        text: Any text.

    Returns:
        The numbers found (possibly empty).
    """
    found = []
    for match in NUMBER_PATTERN.finditer(text):
        value = number_at(match)
        if value is not None:
            found.append(value)
    return found


def after_last_marker(text: str) -> str | None:
    """The segment after the last answer marker, up to the end of its line or sentence.

    Args:
        text: A model reply.

    Returns:
        The segment, or None when the text has no marker.
    """
    last = None
    for match in MARKER_PATTERN.finditer(text):
        last = match
    if last is None:
        return None
    rest = text[last.end() :]
    if last.group(0).lower().startswith("\\boxed"):
        close = rest.find("}")
        return rest if close < 0 else rest[:close]
    start = 0
    while start < len(rest) and rest[start] in " \t\n*_:$":
        start += 1
    end_match = SEGMENT_END.search(rest, start)
    return rest if end_match is None else rest[: end_match.start()]


def extract_final_number(text: str) -> float | None:
    """Extract the final numeric answer from a free-text reply.

    Args:
        text: A model reply (chain of thought).

    Returns:
        The answer as a float, or None when the text contains no number.
    """
    if not text:
        return None
    segment = after_last_marker(text)
    if segment is not None:
        values = numbers_in(segment)
        if values:
            return values[-1] if "=" in segment else values[0]
    values = numbers_in(text)
    return values[-1] if values else None


def run(text: str) -> dict[str, float | int | None]:
    """Code-node entry point: ``{"answer": <number or None>}``.

    Args:
        text: The reply of the preceding LLM node.

    Returns:
        The extracted answer; integral values are returned as ``int``.
    """
    value = extract_final_number(text if isinstance(text, str) else str(text))
    if value is not None and value == int(value) and abs(value) < 2**53:
        return {"answer": int(value)}
    return {"answer": value}
