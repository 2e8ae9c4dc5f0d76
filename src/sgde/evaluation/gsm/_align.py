"""Static half of the templatiser: align code literals with text numbers, then rewrite the code.

Nothing here executes code. :func:`align` decides which numeric literals of ``solution()``
become parameters and which numbers of the text become slots (or returns a failure reason);
:func:`build_code` and :func:`build_text` produce the parametrised code and the slotted text;
:func:`instrument` turns template code into a variant that also returns its intermediates.
"""

from __future__ import annotations

import ast
import builtins
import itertools
import keyword
import math
import re
from dataclasses import dataclass, field

from sgde.evaluation.gsm._mentions import Mention
from sgde.optimize.lift import make_entry
from sgde.optimize.sources.code import instrument

__all__ = [
    "BATCH_ENTRY",
    "Alignment",
    "AlignmentFailure",
    "Literal",
    "ParamDraft",
    "align",
    "batch_program",
    "build_code",
    "build_text",
    "find_literals",
    "instrument",
    "solution_function",
]

_STOP = {
    "a", "an", "the", "of", "per", "each", "every", "for", "to", "in", "on", "at", "and", "is",
    "are", "was", "were", "it", "that", "with", "his", "her", "their", "more", "than", "as",
    "by", "from", "she", "he", "they", "has", "have", "had",
}  # fmt: skip
_RESERVED = set(keyword.kwlist) | set(dir(builtins)) | {"run", "solution", "math", "result"}
_MAX_PERMUTATIONS = 720
BATCH_ENTRY = "evaluate_batch"
_BATCH_CODE = """

def evaluate_batch(rows):
    out = []
    for row in rows:
        try:
            res = run(**row)
        except Exception as exc:
            out.append({"error": repr(exc)})
            continue
        clean = {}
        for key, value in res["vars"].items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                try:
                    if math.isfinite(value):
                        clean[key] = value
                except OverflowError:
                    pass
        value = res["result"]
        try:
            ok = isinstance(value, (int, float)) and math.isfinite(value)
        except OverflowError:
            ok = False
        if not ok:
            out.append({"error": "result is not a finite number: " + repr(value)[:80]})
            continue
        out.append({"result": value, "vars": clean})
    return out
"""
# How a text number can appear in code: "20%" may be written 20, 0.2, 1.2 or 0.8.
_FORMS = {
    "value": lambda v: v,
    "percent": lambda v: v / 100,
    "percent_up": lambda v: 1 + v / 100,
    "percent_down": lambda v: 1 - v / 100,
}
# Words that put a number in the code without writing it in the text: (value, operators).
_IMPLICIT = [
    (r"\bhalf\b|\bhalves\b|\bhalved\b", 2.0, {"Div", "FloorDiv"}),
    (r"\bhalf\b", 0.5, {"Mult"}),
    (r"\btwice\b|\bdoubles?\b|\bdoubled\b|\bpairs?\b", 2.0, {"Mult"}),
    (r"\bthrice\b|\btriples?\b|\btripled\b", 3.0, {"Mult"}),
    (r"\bdozens?\b", 12.0, {"Mult", "Div", "FloorDiv"}),
    (r"\bquarters?\b", 4.0, {"Div", "FloorDiv"}),
    (r"\bquarters?\b", 0.25, {"Mult"}),
    (r"%|\bpercent", 100.0, {"Div", "Mult"}),
    (r"\bthirds?\b", 3.0, {"Div", "FloorDiv"}),
    (r"\bfourths?\b", 4.0, {"Div", "FloorDiv"}),
    (r"\bfifths?\b", 5.0, {"Div", "FloorDiv"}),
    (r"\bsixths?\b", 6.0, {"Div", "FloorDiv"}),
    (r"\beighths?\b", 8.0, {"Div", "FloorDiv"}),
    (r"\btenths?\b", 10.0, {"Div", "FloorDiv"}),
    (r"(?<![\w.])\d+/(?:2)(?!\d)", 2.0, {"Div", "FloorDiv"}),
    (r"(?<![\w.])\d+/(?:3)(?!\d)", 3.0, {"Div", "FloorDiv"}),
    (r"(?<![\w.])\d+/(?:4)(?!\d)", 4.0, {"Div", "FloorDiv"}),
    (r"(?<![\w.])\d+/(?:5)(?!\d)", 5.0, {"Div", "FloorDiv"}),
    (r"(?<![\w.])\d+/(?:6)(?!\d)", 6.0, {"Div", "FloorDiv"}),
    (r"(?<![\w.])\d+/(?:8)(?!\d)", 8.0, {"Div", "FloorDiv"}),
    (r"(?<![\w.])\d+/(?:10)(?!\d)", 10.0, {"Div", "FloorDiv"}),
    (r"(?<![\w.])(?:2|two)[/-]\w", 2.0, {"Mult"}),
    (r"(?<![\w.])(?:3|three)[/-]\w", 3.0, {"Mult"}),
]


@dataclass(frozen=True)
class Literal:
    """A numeric literal of ``solution()``.

    Attributes:
        key: ``(lineno, col_offset)`` — identifies the node in a fresh parse of the code.
        value: Its value (always non-negative; a leading minus is a separate operator).
        is_int: Written as an integer literal.
        assign_name: The variable when the literal is the whole right-hand side of a
            top-level ``name = <literal>`` in ``solution()`` and ``name`` is assigned once.
        op: The binary operator it is an operand of (``"Mult"``, ``"Div"``, ...), if any.
        target: The variable assigned by the statement the literal is in, if any.
    """

    key: tuple[int, int]
    value: float
    is_int: bool
    assign_name: str | None
    op: str | None = None
    target: str | None = None


@dataclass
class ParamDraft:
    """A parameter in the making: the literal it replaces and the text mentions it fills."""

    name: str
    literal: Literal
    mentions: list[int]
    form: str = "value"  # how the code uses it: see _FORMS


@dataclass
class Alignment:
    """The result of a successful alignment."""

    params: list[ParamDraft]
    constants: list[Literal] = field(default_factory=list)


@dataclass(frozen=True)
class AlignmentFailure:
    """Why a row could not be aligned (``reason`` is a coverage reason code)."""

    reason: str
    detail: str


def solution_function(tree: ast.Module) -> ast.FunctionDef | None:
    """Return the top-level ``def solution()`` of a module, if any."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "solution":
            return node
    return None


def _body_without_docstring(func: ast.FunctionDef) -> list[ast.stmt]:
    body = func.body
    first = body[0] if body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return body[1:]
    return body


def find_literals(func: ast.FunctionDef) -> list[Literal]:
    """Numeric literals of ``func`` in source order.

    The docstring and the digits argument of ``round(x, n)`` are skipped.
    """
    stores: dict[str, int] = {}
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            stores[node.id] = stores.get(node.id, 0) + 1
    direct: dict[tuple[int, int], str] = {}
    for stmt in _body_without_docstring(func):
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
            and stores.get(stmt.targets[0].id) == 1
        ):
            value = stmt.value
            if isinstance(value, ast.Constant):
                direct[(value.lineno, value.col_offset)] = stmt.targets[0].id
    skip: set[int] = set()
    for node in ast.walk(func):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "round"
            and len(node.args) == 2
        ):
            skip.add(id(node.args[1]))
    ops: dict[int, str] = {}
    for node in ast.walk(func):
        if isinstance(node, ast.BinOp):
            ops[id(node.left)] = ops[id(node.right)] = type(node.op).__name__
    out: list[Literal] = []
    for stmt in _body_without_docstring(func):
        target = None
        if isinstance(stmt, (ast.Assign, ast.AugAssign)):
            first = stmt.targets[0] if isinstance(stmt, ast.Assign) else stmt.target
            target = first.id if isinstance(first, ast.Name) else None
        for node in ast.walk(stmt):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, (int, float))
                and not isinstance(node.value, bool)
                and id(node) not in skip
            ):
                key = (node.lineno, node.col_offset)
                out.append(
                    Literal(
                        key,
                        float(node.value),
                        isinstance(node.value, int),
                        direct.get(key),
                        ops.get(id(node)),
                        target,
                    )
                )
    out.sort(key=lambda lit: lit.key)
    return out


def _words(text: str) -> list[str]:
    return [w.rstrip("s") for w in re.findall(r"[a-z]+", text.lower()) if w not in _STOP]


def _context(text: str, m: Mention) -> set[str]:
    before = _words(text[max(0, m.start - 40) : m.start])[-3:]
    after = _words(text[m.end : m.end + 50])[:4]
    return set(before) | set(after)


def _name_score(lit: Literal, ctx: set[str]) -> int:
    if lit.assign_name is None:
        return 0
    parts = {p.rstrip("s") for p in lit.assign_name.lower().split("_") if p}
    return len(parts & ctx)


def _best_assignment(
    mentions: list[int], lits: list[Literal], contexts: dict[int, set[str]]
) -> list[tuple[int, Literal]] | None:
    """Pair mentions and literals (same number of each) by variable-name overlap.

    One of each pairs directly. Otherwise the pairing with the highest overlap between the
    literals' variable names and the words around each mention wins; None when no pairing
    is strictly best (equal values with unknown roles are not guessed by order).
    """
    if len(mentions) == 1:
        return [(mentions[0], lits[0])]
    scores: list[tuple[int, tuple[int, ...]]] = []
    for count, perm in enumerate(itertools.permutations(range(len(lits)))):
        if count >= _MAX_PERMUTATIONS:
            return None
        score = sum(_name_score(lits[j], contexts[i]) for i, j in zip(mentions, perm, strict=True))
        scores.append((score, perm))
    scores.sort(key=lambda sp: -sp[0])
    if len(scores) > 1 and scores[0][0] == scores[1][0]:
        return None
    return [(i, lits[j]) for i, j in zip(mentions, scores[0][1], strict=True)]


def _param_name(text: str, m: Mention, lit: Literal, taken: set[str]) -> str:
    after = [w for w in re.findall(r"[a-z]+", text[m.end : m.end + 40].lower()) if w not in _STOP]
    if after and len(after[0]) > 2:
        stem = after[0]
    elif lit.target is not None:
        stem = lit.target
    else:
        stem = "value"
    base = f"{stem}_percent" if m.percent and "percent" not in stem else stem
    if lit.assign_name is not None and lit.target == lit.assign_name:
        base = f"{lit.assign_name}_percent"
    name, k = base, 2
    while name in taken or name in _RESERVED:
        name = f"{base}_{k}"
        k += 1
    return name


def _unit(text: str, m: Mention) -> set[str]:
    words = re.findall(r"[a-z]+", text[m.end : m.end + 30].lower())[:2]
    return {w.rstrip("s") for w in words if w not in _STOP}


def _same_unit(text: str, group: list[Mention]) -> bool:
    """Whether every mention is followed by a common word ("8 weeks" ... "the 8 weeks")."""
    units = [_unit(text, m) for m in group]
    return bool(set.intersection(*units))


def _implicit(text: str, literals: list[Literal]) -> set[tuple[int, int]]:
    """Literals explained by words such as "half", "twice", "dozen", "%" (one per occurrence)."""
    explained: set[tuple[int, int]] = set()
    for pattern, value, ops in _IMPLICIT:
        count = len(re.findall(pattern, text, re.IGNORECASE))
        for lit in literals:
            if count <= 0:
                break
            if lit.value == value and lit.op in ops and lit.key not in explained:
                explained.add(lit.key)
                count -= 1
    return explained


def align(
    text: str,
    mentions: list[Mention],
    doc_values: dict[int, float],
    literals: list[Literal],
    code_names: set[str],
) -> Alignment | AlignmentFailure:
    """Align text mentions with code literals, one to one.

    Every slot-capable number of the text must match exactly one literal (possibly as a
    percentage: 20% <-> 20, 0.2, 1.2 or 0.8): a number without a literal could be a derived
    value or a restatement that would go stale when the values change (``unused-number``), and
    a value repeated in the text or in the code cannot be told apart safely
    (``ambiguous-alignment``) unless variable names settle it. Literals explained by words
    such as "half" or "dozen" are set aside first.

    Args:
        text: The GSM-Hard question.
        mentions: Its numbers (:func:`~sgde.evaluation.gsm._mentions.find_mentions`).
        doc_values: Mention index -> value of the paired number in the GSM8K wording.
        literals: The literals of ``solution()``.
        code_names: Every name used in the code (parameter names must not collide).

    Returns:
        The parameters or a failure with a reason: ``malformed-text``, ``no-numbers``,
        ``text-code-disagree``, ``unused-number``, ``ambiguous-alignment``.
    """
    bad = [m for m in mentions if m.malformed]
    if bad:
        return AlignmentFailure(
            "malformed-text", f"number {bad[0].text!r} at offset {bad[0].start} is malformed"
        )
    slots = [i for i, m in enumerate(mentions) if m.slot]
    if not slots or not literals:
        return AlignmentFailure("no-numbers", "no text number that could become a slot")

    implicit = _implicit(text, literals)
    candidates = [lit for lit in literals if lit.key not in implicit]

    def lits_of(value: float, pool: list[Literal]) -> list[Literal]:
        return [lit for lit in pool if math.isclose(lit.value, value, rel_tol=1e-12, abs_tol=0)]

    text_values = {mentions[i].value for i in slots}
    # Label errors: GSM-Hard replaced a number in the text but not (only) in the code.
    for i in slots:
        old = doc_values.get(i)
        m = mentions[i]
        if old is None or old == m.value:
            continue
        if not lits_of(m.value, literals) and not (m.percent and lits_of(m.value / 100, literals)):
            return AlignmentFailure(
                "text-code-disagree",
                f"the text says {m.text} (GSM8K: {old:g}) but the code has no literal {m.text}",
            )
    for i in slots:
        old = doc_values.get(i)
        m = mentions[i]
        if old is None or old == m.value:
            continue
        stale = [lit for lit in lits_of(old, literals) if lit.assign_name is not None]
        if stale and old not in text_values and old not in (0.0, 1.0):
            return AlignmentFailure(
                "text-code-disagree",
                f"the text says {m.text} where GSM8K says {old:g}, but the code still has "
                f"{stale[0].assign_name} = {old:g}",
            )

    contexts = {i: _context(text, mentions[i]) for i in slots}
    by_value: dict[float, list[int]] = {}
    for i in slots:
        by_value.setdefault(mentions[i].value, []).append(i)
    drafts: list[ParamDraft] = []
    for value, group in by_value.items():
        form, lits = "value", lits_of(value, candidates)
        if not lits and all(mentions[i].percent for i in group):
            for name in ("percent", "percent_up", "percent_down"):
                lits = lits_of(_FORMS[name](value), candidates)
                if lits:
                    form = name
                    break
        first = mentions[group[0]].text
        if not lits:
            return AlignmentFailure(
                "unused-number",
                f"{first} (offset {mentions[group[0]].start}) has no literal in the code",
            )
        if len(group) > 1 and len(lits) == 1 and _same_unit(text, [mentions[i] for i in group]):
            drafts.append(ParamDraft("", lits[0], list(group), form))
            continue
        if len(group) != len(lits):
            return AlignmentFailure(
                "ambiguous-alignment",
                f"{first} appears {len(group)} time(s) in the text and {len(lits)} time(s) "
                "in the code",
            )
        pairing = _best_assignment(group, lits, contexts)
        if pairing is None:
            return AlignmentFailure(
                "ambiguous-alignment",
                f"cannot tell which of {len(lits)} literals {value:g} each {first} refers to",
            )
        drafts += [ParamDraft("", lit, [i], form) for i, lit in pairing]
    drafts.sort(key=lambda d: d.mentions[0])
    taken = set(code_names)
    for d in drafts:
        if d.literal.assign_name is not None and d.form == "value":
            d.name = d.literal.assign_name
        else:
            d.name = _param_name(text, mentions[d.mentions[0]], d.literal, taken)
        taken.add(d.name)
    used = {d.literal.key for d in drafts}
    return Alignment(drafts, [lit for lit in literals if lit.key not in used])


def build_text(text: str, mentions: list[Mention], params: list[ParamDraft]) -> str:
    """Replace the aligned mentions by ``{name}`` slots; other braces are doubled."""
    spans = sorted((mentions[i].start, mentions[i].end, p.name) for p in params for i in p.mentions)
    out: list[str] = []
    pos = 0
    for start, end, name in spans:
        out.append(text[pos:start].replace("{", "{{").replace("}", "}}"))
        out.append("{" + name + "}")
        pos = end
    out.append(text[pos:].replace("{", "{{").replace("}", "}}"))
    return "".join(out)


class _Rewrite(ast.NodeTransformer):
    def __init__(self, params: list[ParamDraft]) -> None:
        self.by_key = {p.literal.key: p for p in params}

    def visit_Constant(self, node: ast.Constant) -> ast.expr:
        p = self.by_key.get((node.lineno, node.col_offset))
        if p is None:
            return node
        expr: ast.expr = ast.Name(id=p.name, ctx=ast.Load())
        if p.form != "value":
            expr = ast.BinOp(left=expr, op=ast.Div(), right=ast.Constant(100))
        if p.form == "percent_up":
            expr = ast.BinOp(left=ast.Constant(1), op=ast.Add(), right=expr)
        elif p.form == "percent_down":
            expr = ast.BinOp(left=ast.Constant(1), op=ast.Sub(), right=expr)
        return ast.copy_location(expr, node)


def build_code(code: str, params: list[ParamDraft]) -> str:
    """Rewrite ``solution()`` into ``run(<params>)``: aligned literals become parameters.

    A parameter that replaces a top-level ``name = <literal>`` drops that line; any other
    aligned literal is replaced by the parameter's name (``name / 100`` for percentages the
    code writes as fractions). The docstring is dropped; other literals stay constants.
    """
    tree = ast.parse(code)
    func = solution_function(tree)
    if func is None:
        raise ValueError("code has no solution() function")
    drop = {p.literal.key for p in params if p.literal.assign_name == p.name and p.form == "value"}
    body: list[ast.stmt] = []
    for stmt in _body_without_docstring(func):
        if isinstance(stmt, ast.Assign):
            value = stmt.value
            if isinstance(value, ast.Constant) and (value.lineno, value.col_offset) in drop:
                continue
        body.append(_Rewrite(params).visit(stmt))
    func.body = body
    make_entry(func, "run", [p.name for p in params])
    ast.fix_missing_locations(tree)
    return ast.unparse(tree) + "\n"


def batch_program(code: str, entry: str = "run") -> str:
    """Code whose ``evaluate_batch(rows)`` runs ``entry(**row)`` for each row.

    Each result is ``{"result": <finite number>, "vars": {<numeric intermediate>: value}}``
    or ``{"error": "<repr of the exception>"}``: one sandbox call evaluates many candidates,
    and one failing candidate does not fail the others.
    """
    program = instrument(code, entry)
    if entry != "run":
        program += f"\n\ndef run(**kwargs):\n    return {entry}(**kwargs)\n"
    return "import math\n" + program + _BATCH_CODE
