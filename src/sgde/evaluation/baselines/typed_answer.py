"""Deterministic extraction of a typed task's outputs from a free-text reply.

Like :mod:`.final_number`, this module is self-contained on purpose: its source (after a
``FIELDS = [...]`` line naming the task's outputs and their kinds) is the ``code`` of the
``extract`` node ending a typed chain-of-thought plan, so it runs in the sandbox. It imports
only ``re`` and ``json``, avoids dunder names and defines ``run``.

The values are returned as found (text, or JSON values); the task's metric coerces them to
their types (``sgde.task.FieldType.coerce``), so ``"$1,234.50"`` or ``"March 5, 2024"`` are
still judged. Rules per output field, the first that finds a value wins:

1. A JSON object in the reply holding the field (the last such object).
2. A line ``name: value`` or ``name = value`` (the last one; ``**bold**`` and bullets allowed).
3. With a single output: the segment after the last answer marker (``answer is``,
   ``answer:``, ``final answer``, ``####``), up to the end of its line.
4. With a single output, by kind: the last number (integer, number), the last date-like text
   (date), the last ``yes/no/true/false`` (boolean), the last ``[...]`` (list), the last
   label mentioned (enum), the last non-empty line (string).

A value found by rule 2 or 3 is narrowed to its kind the same way (``"25 days"`` -> ``"25"``);
a list without brackets (``491, 407 and 364``) is split on commas, semicolons and "and".
"""

import json
import re

Json = str | int | float | bool | None | list["Json"] | dict[str, "Json"]
FIELDS: list[tuple[str, str, list[str] | None]] = []  # the plan's code fills this line

MARKER = re.compile(
    r"(?:final\s+answer|answer)\s*(?:is|was|would\s+be|will\s+be|equals|:|=)?\s*[:=]?|####",
    re.IGNORECASE,
)
NUMBER = re.compile(r"[-\u2212]?[$\u20ac\u00a3]?\d[\d,]*(?:\.\d+)?")
DATE = re.compile(
    r"\d{4}-\d{1,2}-\d{1,2}"
    r"|\d{1,2}/\d{1,2}/\d{4}"
    r"|(?:January|February|March|April|May|June|July|August|September|October|November|"
    r"December)\s+\d{1,2},?\s+\d{4}"
    r"|\d{1,2}\s+(?:January|February|March|April|May|June|July|August|September|October|"
    r"November|December),?\s+\d{4}",
    re.IGNORECASE,
)
BOOLEAN = re.compile(r"\b(?:yes|no|true|false)\b", re.IGNORECASE)
LIST = re.compile(r"\[[^\[\]]*\]")
OBJECT = re.compile(r"\{[^{}]*\}")


def clean(text: str) -> str:
    """Strip markup, quotes and a trailing full stop from a found value."""
    value = text.strip().strip("*_`").strip()
    if value.endswith("."):
        value = value[:-1].rstrip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return value.strip()


def from_json(text: str, name: str) -> tuple[Json] | None:
    """The field's value in the last JSON object of the reply that holds it."""
    found = None
    for match in OBJECT.finditer(text):
        try:
            data = json.loads(match.group(0))
        except ValueError:
            continue
        if isinstance(data, dict):
            for key, value in data.items():
                if str(key).strip().lower() == name.lower():
                    found = (value,)
    return found


def from_lines(text: str, name: str) -> str | None:
    """The value of the last ``name: value`` line."""
    label = re.escape(name).replace("_", "[_ ]")
    pattern = re.compile(
        r"^[\s*\-#>]*\**\s*" + label + r"\s*\**\s*[:=]\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE
    )
    found = None
    for match in pattern.finditer(text):
        found = clean(match.group(1))
    return found or None


def after_marker(text: str) -> str | None:
    """The segment after the last answer marker, to the end of its line."""
    last = None
    for match in MARKER.finditer(text):
        last = match
    if last is None:
        return None
    rest = text[last.end() :].lstrip(" \t*_:")
    line = rest.split("\n", 1)[0]
    return clean(line) or None


def by_kind(text: str, kind: str, labels: list[str] | None) -> str | None:
    """The last value of the field's kind anywhere in ``text``."""
    if kind in ("integer", "number"):
        found = NUMBER.findall(text)
        return found[-1].rstrip(",") if found else None
    if kind == "date":
        found = DATE.findall(text)
        return found[-1] if found else None
    if kind == "boolean":
        found = BOOLEAN.findall(text)
        return found[-1] if found else None
    if kind == "list":
        found = LIST.findall(text)
        return found[-1] if found else None
    if kind == "enum":
        best, where = None, -1
        for label in labels or []:
            for match in re.finditer(r"\b" + re.escape(label) + r"\b", text, re.IGNORECASE):
                if match.start() > where:
                    best, where = label, match.start()
        return best
    lines = [clean(line) for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else None


def refine(value: Json, kind: str, labels: list[str] | None) -> Json:
    """Narrow a marker segment to the field's kind (``"25 days"`` -> ``"25"``)."""
    if not isinstance(value, str) or kind == "string":
        return value
    narrowed = by_kind(value, kind, labels)
    if narrowed is None and kind == "list":
        parts: list[Json] = [x.strip() for x in re.split(r",|;|\band\b", value) if x.strip()]
        return parts
    return narrowed if narrowed is not None else value


def extract(text: str, fields: list[tuple[str, str, list[str] | None]]) -> dict[str, Json]:
    """Every field's value (or None) from a reply."""
    out = {}
    single = len(fields) == 1
    for name, kind, labels in fields:
        found = from_json(text, name)
        if found is not None:
            out[name] = found[0]
            continue
        value = from_lines(text, name)
        if value is None and single:
            value = after_marker(text)
        if value is None and single:
            value = by_kind(text, kind, labels)
        out[name] = refine(value, kind, labels)
    return out


def run(text: Json) -> dict[str, Json]:
    """Code-node entry point: ``{field: value or None}`` for every output of the task."""
    return extract(text if isinstance(text, str) else str(text), FIELDS)
