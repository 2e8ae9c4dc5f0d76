"""Deterministic literal lifting: one solved instance → a reusable, parameterised function.

"Solve, then lift": the teacher writes ``solution()`` for one training example;
the numeric literals of that code which also occur as numbers in the example's text become
named parameters of ``run(**params)``. Other examples of the same template get their parameter
values by *positional alignment*: the k-th number of their text fills the parameter lifted
from the k-th number of the seed text, when both texts hold the same count of numbers.

Names come from the variable a literal is assigned to (``eggs_per_day = 16`` →
``eggs_per_day``), sanitised and de-duplicated; a literal inside a larger expression gets
``<target>_<n>`` or ``value_<n>``. A literal ``0.25`` whose text reads ``25%`` is lifted as a
percentage parameter and divided by 100 in the code.
"""

from __future__ import annotations

import ast
import keyword
import re
from collections.abc import Sequence
from dataclasses import dataclass

from sgde.runtime.parsing import fenced_blocks

__all__ = [
    "LiftError",
    "LiftResult",
    "LiftedParam",
    "TextNumber",
    "align_params",
    "extract_code",
    "find_numbers",
    "lift_solution",
    "make_entry",
    "snippet",
]

_NUMBER_RE = re.compile(r"(?<![\d.,])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(%?)")
_IDENT_RE = re.compile(r"[^0-9a-zA-Z_]+")
_CODE_LANGS = frozenset({"", "python", "py", "python3"})


class LiftError(ValueError):
    """The solution could not be lifted (no ``solution`` function, no liftable literal...)."""


@dataclass(frozen=True)
class TextNumber:
    """A number found in a text: its value, the matched text and its span."""

    value: int | float
    text: str
    start: int
    end: int
    percent: bool


@dataclass(frozen=True)
class LiftedParam:
    """One lifted parameter.

    Attributes:
        name: Python identifier used as ``run`` parameter and extraction field.
        position: Index of its number among ``find_numbers(seed_text)``.
        value: Its value in the seed example.
        percent: The code divides it by 100 (text ``25%`` vs literal ``0.25``).
        snippet: Text around the number in the seed example.
        context: ``snippet`` with the number itself shown as ``___`` and other numbers as
            ``N`` — what the student sees, so that it cannot copy the seed example's numbers.
    """

    name: str
    position: int
    value: int | float
    percent: bool
    snippet: str
    context: str = ""


@dataclass(frozen=True)
class LiftResult:
    """A lifted function and its parameters (in signature order)."""

    code: str
    params: tuple[LiftedParam, ...]
    n_text_numbers: int
    output_field: str

    def seed_values(self) -> dict[str, int | float]:
        """Parameter values of the seed example."""
        return {p.name: p.value for p in self.params}


def find_numbers(text: str) -> list[TextNumber]:
    """All numbers written with digits in ``text``, in order ("1,234.5" → 1234.5)."""
    found: list[TextNumber] = []
    for m in _NUMBER_RE.finditer(text):
        whole, frac, pct = m.group(1), m.group(2) or "", m.group(3)
        digits = whole.replace(",", "") + frac
        value: int | float = float(digits) if frac else int(digits)
        found.append(TextNumber(value, m.group(0), m.start(), m.end(), bool(pct)))
    return found


def snippet(text: str, start: int, end: int, width: int = 30) -> str:
    """The words around ``text[start:end]`` (about ``width`` characters each side)."""
    lo = max(0, start - width)
    hi = min(len(text), end + width)
    left = text[lo:start]
    right = text[end:hi]
    if lo > 0 and " " in left:
        left = left[left.index(" ") + 1 :]
    if hi < len(text) and " " in right:
        right = right[: right.rindex(" ")]
    return " ".join((left + text[start:end] + right).split())


def _masked_context(text: str, numbers: list[TextNumber], index: int) -> str:
    """Snippet around ``numbers[index]`` with it shown as ``___`` and other numbers as ``N``."""
    parts: list[str] = []
    last = 0
    start = 0
    for i, num in enumerate(numbers):
        parts.append(text[last : num.start])
        if i == index:
            start = sum(len(p) for p in parts)
            parts.append("___")
        else:
            parts.append("N")
        last = num.end
    parts.append(text[last:])
    return snippet("".join(parts), start, start + 3)


def extract_code(text: str) -> str:
    """The Python code in a model answer: the fenced blocks joined, else the whole text."""
    blocks = [body for lang, body in fenced_blocks(text) if lang in _CODE_LANGS]
    if blocks:
        return "\n\n".join(b.strip("\n") for b in blocks).strip() + "\n"
    unfenced = text.replace("```python", "").replace("```", "")
    return unfenced.strip() + "\n"


def _sanitise(name: str) -> str:
    name = _IDENT_RE.sub("_", name).strip("_").lower() or "value"
    if name[0].isdigit():
        name = "n_" + name
    if keyword.iskeyword(name) or name in {"run", "solution", "result", "answer"}:
        name += "_value"
    return name


def _is_number(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    )


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def _find_function(tree: ast.Module, entry: str) -> ast.FunctionDef:
    for stmt in tree.body:
        if isinstance(stmt, ast.FunctionDef) and stmt.name == entry:
            return stmt
    raise LiftError(f"the code defines no top-level function {entry}()")


def _parents(func: ast.FunctionDef) -> dict[int, ast.AST]:
    parents: dict[int, ast.AST] = {}
    for node in ast.walk(func):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    return parents


def _assigned_names(func: ast.FunctionDef) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            counts[node.id] = counts.get(node.id, 0) + 1
    return counts


def _all_names(func: ast.FunctionDef, tree: ast.Module) -> set[str]:
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    names |= {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
    names |= {
        s.name
        for s in tree.body
        if isinstance(s, (ast.FunctionDef, ast.ClassDef, ast.Import))
        if hasattr(s, "name")
    }
    return names


def _target_name(const: ast.AST, parents: dict[int, ast.AST]) -> tuple[str | None, bool]:
    """(assigned variable name, whether the literal is the whole right-hand side)."""
    node: ast.AST = const
    while id(node) in parents:
        parent = parents[id(node)]
        if isinstance(parent, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = parent.targets if isinstance(parent, ast.Assign) else [parent.target]
            if len(targets) == 1 and isinstance(targets[0], ast.Name):
                whole = parent.value is const and not isinstance(parent, ast.AugAssign)
                return targets[0].id, whole
            return None, False
        if isinstance(parent, ast.keyword) and parent.arg:
            return parent.arg, False
        if isinstance(parent, (ast.stmt, ast.FunctionDef)):
            return None, False
        node = parent
    return None, False


class _Replace(ast.NodeTransformer):
    def __init__(self, mapping: dict[int, ast.expr], drop: set[int]) -> None:
        self.mapping = mapping
        self.drop = drop

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return self.mapping.get(id(node), node)

    def generic_visit(self, node: ast.AST) -> ast.AST:
        for fname, old in ast.iter_fields(node):
            if isinstance(old, list):
                new_list = []
                for item in old:
                    if isinstance(item, ast.stmt) and id(item) in self.drop:
                        continue
                    new_list.append(self.visit(item) if isinstance(item, ast.AST) else item)
                setattr(node, fname, new_list)
            elif isinstance(old, ast.AST):
                setattr(node, fname, self.visit(old))
        return node


def make_entry(func: ast.FunctionDef, name: str, params: Sequence[str]) -> None:
    """Turn ``func`` (in place) into the entry function ``name(*params)``.

    The parameters are plain positional-or-keyword ones without defaults, replacing the old
    signature; a body left empty by the rewrite becomes ``pass``. Shared by the compiler's
    lift and the dataset aligner (:mod:`sgde.evaluation`), which both turn a solved
    ``solution()`` into a parameterised ``run(...)``.

    Args:
        func: The function definition to rewrite.
        name: Its new name (``"run"``).
        params: The parameter names, in order.
    """
    func.name = name
    func.args = ast.arguments(
        posonlyargs=[],
        args=[ast.arg(arg=p) for p in params],
        vararg=None,
        kwonlyargs=[],
        kw_defaults=[],
        kwarg=None,
        defaults=[],
    )
    if not func.body:
        func.body = [ast.Pass()]


def _wrap_returns(func: ast.FunctionDef, output_field: str) -> None:
    def visit(stmts: list[ast.stmt]) -> None:
        for stmt in stmts:
            if isinstance(stmt, ast.Return):
                value = stmt.value if stmt.value is not None else ast.Constant(None)
                stmt.value = ast.Dict(keys=[ast.Constant(output_field)], values=[value])
            for fname in ("body", "orelse", "finalbody", "handlers"):
                sub = getattr(stmt, fname, None)
                if isinstance(sub, list) and not isinstance(stmt, ast.FunctionDef):
                    visit([s for s in sub if isinstance(s, ast.stmt)])
                    for h in sub:
                        if isinstance(h, ast.ExceptHandler):
                            visit(h.body)

    visit(func.body)


def lift_solution(
    code: str,
    text: str,
    *,
    entry: str = "solution",
    output_field: str = "answer",
    new_entry: str = "run",
) -> LiftResult:
    """Lift the literals of ``code``'s ``entry()`` that occur in ``text`` into parameters.

    Args:
        code: Python source defining ``entry()`` (no parameters) that returns the answer.
        text: The example's text the code solved.
        entry: The solved function's name.
        output_field: Key of the dict the lifted function returns.
        new_entry: Name of the lifted function.

    Returns:
        The lifted source (``def run(p1, p2, ...): ... return {output_field: ...}``) and its
        parameters ordered by their position in the text.

    Raises:
        LiftError: when the code does not parse, lacks ``entry``, or no literal occurs in
            ``text``.
    """
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        raise LiftError(f"the code does not parse: {exc.msg} (line {exc.lineno})") from exc
    func = _find_function(tree, entry)
    numbers = find_numbers(text)
    if not numbers:
        raise LiftError("the example's text holds no number to lift")
    parents = _parents(func)
    assigned = _assigned_names(func)
    taken = _all_names(func, tree)

    # Group literals by the text position they align with (same value -> same parameter).
    position_of_value: dict[tuple[float, bool], int] = {}
    used_positions: set[int] = set()
    groups: dict[int, list[tuple[ast.Constant, bool]]] = {}
    consts = sorted(
        (n for n in ast.walk(func) if _is_number(n)),
        key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)),
    )
    for const in consts:
        assert isinstance(const, ast.Constant)
        val = float(const.value)  # type: ignore[arg-type]  # _is_number checked it
        match: tuple[int, bool] | None = None
        for key_pct in (False, True):
            key = (val, key_pct)
            if key in position_of_value:
                match = (position_of_value[key], key_pct)
                break
        if match is None:
            for pct, wanted in ((False, val), (True, val * 100.0)):
                cands = [
                    i
                    for i, num in enumerate(numbers)
                    if _same(float(num.value), wanted) and (not pct or num.percent)
                ]
                free = [i for i in cands if i not in used_positions]
                if cands:
                    pos = free[0] if free else cands[0]
                    match = (pos, pct)
                    position_of_value[(val, pct)] = pos
                    used_positions.add(pos)
                    break
        if match is not None:
            groups.setdefault(match[0], []).append((const, match[1]))
    if not groups:
        raise LiftError("no numeric literal of the code occurs in the example's text")

    mapping: dict[int, ast.expr] = {}
    drop: set[int] = set()
    params: list[LiftedParam] = []
    used_names: set[str] = set()
    for pos in sorted(groups):
        members = groups[pos]
        percent = members[0][1]
        name: str | None = None
        for const, _ in members:
            target, whole = _target_name(const, parents)
            if target and whole and assigned.get(target, 0) == 1 and target not in used_names:
                name = target
                stmt = parents[id(const)]
                if isinstance(stmt, ast.Assign) and not percent:
                    drop.add(id(stmt))
                break
        if name is None:
            target, _ = _target_name(members[0][0], parents)
            base = _sanitise(target) + "_value" if target else f"value_{pos + 1}"
            name = base
            k = 2
            while name in taken or name in used_names:
                name = f"{base}_{k}"
                k += 1
        used_names.add(name)
        for const, pct in members:
            load = ast.Name(id=name, ctx=ast.Load())
            mapping[id(const)] = (
                ast.BinOp(left=load, op=ast.Div(), right=ast.Constant(100)) if pct else load
            )
        num = numbers[pos]
        params.append(
            LiftedParam(
                name=name,
                position=pos,
                value=num.value,
                percent=percent,
                snippet=snippet(text, num.start, num.end),
                context=_masked_context(text, numbers, pos),
            )
        )

    _Replace(mapping, drop).visit(func)
    # A dropped ``x = <literal>`` whose parameter is also named ``x`` keeps its meaning.
    make_entry(func, new_entry, [p.name for p in params])
    _wrap_returns(func, output_field)
    ast.fix_missing_locations(tree)
    return LiftResult(
        code=ast.unparse(tree) + "\n",
        params=tuple(params),
        n_text_numbers=len(numbers),
        output_field=output_field,
    )


def align_params(lift: LiftResult, text: str) -> dict[str, int | float] | None:
    """Parameter values for another example by positional alignment.

    Returns ``None`` when ``text`` holds a different count of numbers than the seed text
    (the template does not match; the caller falls back to an extraction call).
    """
    numbers = find_numbers(text)
    if len(numbers) != lift.n_text_numbers:
        return None
    return {p.name: numbers[p.position].value for p in lift.params}
