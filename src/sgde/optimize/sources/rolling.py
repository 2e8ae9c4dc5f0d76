"""Loop rolling: repeated groups of lifted numbers become one list parameter.

A row solution written for one row spells out what repeats in the text, once per occurrence:
``quantity_mugs * unit_price_mugs + quantity_plates * unit_price_plates`` for a text with
two (quantity, price) pairs. Lifted as it is, the program has four scalar parameters and
fails on a row with three pairs. When

* an expression folds ``k`` terms of the same shape — a sum (``a + b + ...``), a
  ``max``/``min``/``sum`` of several values, or a list or tuple display — and the terms
  differ only in which lifted numbers they use (``g`` each, after inlining the variables
  they read; ``k >= 2`` blocks of ``g >= 2``, or ``k >= 3`` single numbers: ``a + b`` alone
  is no evidence of a sequence), and
* those ``g * k`` numbers stand in the text as ``k`` consecutive blocks of ``g`` numbers, in
  the same order within every block,

the solution is rewritten to read one list ``L`` of those numbers (``[4, 36.39, 2, 5.64]``,
in text order) and to fold over its blocks::

    sum(quantity_mugs * unit_price_mugs
        for quantity_mugs, unit_price_mugs in zip(L[0::2], L[1::2]))

Two displays of single numbers that interleave in the text (``quantities = [4, 2]``,
``prices = [36.39, 5.64]``) become slices of one such list (``list(L[0::2])``,
``list(L[1::2])``); records (``[(4, 36.39), (2, 5.64)]``) fold as the terms of a display.

Lifted again, ``L`` is a list parameter read as a run of the text's numbers, which absorbs
another row's count of blocks (:func:`~sgde.optimize.sources.lifting.align_row`). The
rewrite is equal to the solution on its own row by construction; the caller verifies it on
every training row as any lifted program. Nothing here names a task: the shapes are read
from the code, the blocks from the positions of the numbers in the text.
"""

from __future__ import annotations

import ast
import copy
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ScalarParam", "key_of", "roll_groups"]

_Key = tuple[int, int, int, int]
_MAX_INLINE = 4
"""How deep a term's variables are inlined when comparing shapes."""


@dataclass(frozen=True)
class ScalarParam:
    """A lifted number of the solution, as the rolling sees it.

    Attributes:
        name: The parameter's name.
        input: The text input it stands in.
        index: Its rank among that text's numbers.
        value: Its value in the row.
        keys: The literal sites of the code that hold it.
    """

    name: str
    input: str
    index: int
    value: int | float
    keys: tuple[_Key, ...]


def key_of(node: ast.AST) -> _Key:
    """Where ``node`` stands in the source (the key of a lifted literal site)."""
    return (
        getattr(node, "lineno", 0),
        getattr(node, "col_offset", 0),
        getattr(node, "end_lineno", 0) or 0,
        getattr(node, "end_col_offset", 0) or 0,
    )


class _ToNames(ast.NodeTransformer):
    def __init__(self, names: dict[_Key, str]) -> None:
        self.names = names

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        name = self.names.get(key_of(node))
        return ast.Name(id=name, ctx=ast.Load()) if name else node


def _stores(func: ast.FunctionDef) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            counts[node.id] = counts.get(node.id, 0) + 1
        elif isinstance(node, ast.arg):
            counts[node.arg] = counts.get(node.arg, 0) + 1
    return counts


def _definitions(func: ast.FunctionDef) -> dict[str, ast.expr]:
    """``variable -> expression`` of top-level ``variable = expression`` assigned once."""
    counts = _stores(func)
    out: dict[str, ast.expr] = {}
    for stmt in func.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            target = stmt.targets[0]
            if isinstance(target, ast.Name) and counts.get(target.id) == 1:
                out[target.id] = stmt.value
    return out


def _inline(expr: ast.expr, defs: dict[str, ast.expr], params: set[str], depth: int) -> ast.expr:
    """``expr`` with the variables it reads replaced by their definitions (``depth`` deep)."""
    if depth <= 0:
        return expr

    class _Sub(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            if isinstance(node.ctx, ast.Load) and node.id in defs and node.id not in params:
                return _inline(copy.deepcopy(defs[node.id]), defs, params, depth - 1)
            return node

    result = _Sub().visit(copy.deepcopy(expr))
    assert isinstance(result, ast.expr)
    return result


def _ordered_uses(node: ast.AST, params: set[str]) -> list[str]:
    """The params ``node`` reads, in source order of first use (``ast.walk`` is breadth-first)."""
    names = [
        n
        for n in ast.walk(node)
        if isinstance(n, ast.Name) and n.id in params and isinstance(n.ctx, ast.Load)
    ]
    names.sort(key=lambda n: (n.lineno, n.col_offset) if hasattr(n, "lineno") else (0, 0))
    out: list[str] = []
    for n in names:
        if n.id not in out:
            out.append(n.id)
    return out


def _shape(term: ast.expr, slots: Sequence[str]) -> str:
    renamed = copy.deepcopy(term)
    index = {name: i for i, name in enumerate(slots)}
    for node in ast.walk(renamed):
        if isinstance(node, ast.Name) and node.id in index:
            node.id = f"_slot{index[node.id]}"
    return ast.dump(renamed, annotate_fields=False, include_attributes=False)


@dataclass
class _Fold:
    """A foldable expression: where it is, how it folds and its inlined terms."""

    node: ast.expr
    kind: str  # "sum" | "max" | "min" | "list" | "tuple"
    terms: list[ast.expr]


def _add_chain(node: ast.expr) -> list[ast.expr]:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _add_chain(node.left) + _add_chain(node.right)
    return [node]


def _folds(func: ast.FunctionDef) -> list[_Fold]:
    found: list[_Fold] = []
    inner: set[int] = set()
    for node in ast.walk(func):
        if id(node) in inner:
            continue
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            chain = _add_chain(node)
            inner.update(id(n) for n in ast.walk(node) if isinstance(n, ast.BinOp))
            found.append(_Fold(node, "sum", chain))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("max", "min", "sum")
            and not node.keywords
        ):
            args = list(node.args)
            if len(args) == 1 and isinstance(args[0], (ast.List, ast.Tuple)):
                inner.add(id(args[0]))
                args = list(args[0].elts)
            if len(args) >= 2 and (node.func.id != "sum" or len(node.args) == 1):
                found.append(_Fold(node, node.func.id, args))
        elif isinstance(node, (ast.List, ast.Tuple)) and isinstance(node.ctx, ast.Load):
            kind = "list" if isinstance(node, ast.List) else "tuple"
            found.append(_Fold(node, kind, list(node.elts)))
    return found


@dataclass
class _Groups:
    """The repeated blocks found in a fold."""

    fold: _Fold
    members: list[int]  # indices of the fold's terms that repeat, in text order
    slots: list[list[str]]  # per member, its params in slot order
    perm: list[int]  # slot -> offset inside a block
    start: int  # text index of the first number
    input: str


def _blocks(
    fold: _Fold, defs: dict[str, ast.expr], by_name: dict[str, ScalarParam]
) -> _Groups | None:
    names = set(by_name)
    terms = [_inline(t, defs, names, _MAX_INLINE) for t in fold.terms]
    slots = [_ordered_uses(t, names) for t in terms]
    shapes: dict[str, list[int]] = {}
    for i, (term, used) in enumerate(zip(terms, slots, strict=True)):
        if used:
            shapes.setdefault(_shape(term, used), []).append(i)
    for members in sorted(shapes.values(), key=len, reverse=True):
        if len(members) < 2:
            return None
        g = len(slots[members[0]])
        flat = [n for i in members for n in slots[i]]
        inputs = {by_name[n].input for n in flat}
        # ``a + b`` of two numbers is no evidence of a sequence; three, or two blocks, are.
        if g == 1 and len(members) < 3:
            continue
        if len(set(flat)) != len(flat) or len(inputs) != 1:
            continue
        members = sorted(members, key=lambda i: min(by_name[n].index for n in slots[i]))
        bases = [min(by_name[n].index for n in slots[i]) for i in members]
        start = bases[0]
        if bases != [start + j * g for j in range(len(members))]:
            continue
        perm = [by_name[n].index - bases[0] for n in slots[members[0]]]
        if sorted(perm) != list(range(g)):
            continue
        if any(
            [by_name[n].index - base for n in slots[i]] != perm
            for i, base in zip(members, bases, strict=True)
        ):
            continue
        return _Groups(fold, members, [slots[i] for i in members], perm, start, inputs.pop())
    return None


_GENERIC = frozenset({"number", "value", "record", "list"})


def _list_name(blocks: Sequence[Sequence[str]], taken: set[str]) -> str:
    """``quantity_and_unit_price_list``: per slot, the words its names share in every block
    (not digits nor generic words such as ``number``), else ``values_list``."""
    words: list[str] = []
    for r in range(len(blocks[0])):
        common = [w for w in blocks[0][r].split("_") if w and not w.isdigit()]
        for block in blocks[1:]:
            common = [w for w in common if w in block[r].split("_")]
        part = "_".join(w for w in common if w not in _GENERIC)
        if part and part not in words:
            words.append(part)
    base = ("_and_".join(words) or "values") + "_list"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


def _fold_expr(groups: _Groups, list_name: str, terms: list[ast.expr]) -> ast.expr:
    g = len(groups.perm)
    first = groups.members[0]
    slot_names = groups.slots[0]
    element = copy.deepcopy(terms[first])
    lst = ast.Name(id=list_name, ctx=ast.Load())
    if g == 1:
        target: ast.expr = ast.Name(id=slot_names[0], ctx=ast.Store())
        source: ast.expr = lst
    else:
        target = ast.Tuple(
            elts=[ast.Name(id=n, ctx=ast.Store()) for n in slot_names], ctx=ast.Store()
        )
        source = ast.Call(
            func=ast.Name(id="zip", ctx=ast.Load()),
            args=[
                ast.Subscript(
                    value=ast.Name(id=list_name, ctx=ast.Load()),
                    slice=ast.Slice(ast.Constant(offset), None, ast.Constant(g)),
                    ctx=ast.Load(),
                )
                for offset in groups.perm
            ],
            keywords=[],
        )
    loop = [ast.comprehension(target=target, iter=source, ifs=[], is_async=0)]
    kind = groups.fold.kind
    if kind in ("list", "tuple"):
        comp: ast.expr = ast.ListComp(elt=element, generators=loop)
        if kind == "tuple":
            comp = ast.Call(func=ast.Name(id="tuple", ctx=ast.Load()), args=[comp], keywords=[])
    else:
        comp = ast.Call(
            func=ast.Name(id=kind, ctx=ast.Load()),
            args=[ast.GeneratorExp(elt=element, generators=loop)],
            keywords=[],
        )
    rest = [t for i, t in enumerate(groups.fold.terms) if i not in groups.members]
    if not rest:
        return comp
    if kind == "sum":
        out = comp
        for t in rest:
            out = ast.BinOp(left=out, op=ast.Add(), right=t)
        return out
    if kind in ("max", "min"):
        return ast.Call(func=ast.Name(id=kind, ctx=ast.Load()), args=[comp, *rest], keywords=[])
    return (
        comp if not rest else ast.BinOp(left=comp, op=ast.Add(), right=ast.List(rest, ast.Load()))
    )


class _Swap(ast.NodeTransformer):
    def __init__(self, target: ast.AST, new: ast.expr) -> None:
        self.target = target
        self.new = new

    def visit(self, node: ast.AST) -> ast.AST:
        if node is self.target:
            return self.new
        result: ast.AST = super().visit(node)
        return result


def _self_assigned(stmt: ast.stmt) -> str | None:
    """``x`` when ``stmt`` is ``x = x``."""
    if (
        isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
        and isinstance(stmt.value, ast.Name)
        and stmt.targets[0].id == stmt.value.id
    ):
        return stmt.targets[0].id
    return None


def _drop_dead(func: ast.FunctionDef) -> None:
    """Remove top-level ``x = expr`` whose ``x`` nothing reads any more (until none is left)."""
    while True:
        loads = {
            n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
        }
        defs = _definitions(func)
        dead = [
            s
            for s in func.body
            if isinstance(s, ast.Assign)
            and len(s.targets) == 1
            and isinstance(s.targets[0], ast.Name)
            and s.targets[0].id in defs
            and s.targets[0].id not in loads
        ]
        if not dead:
            return
        func.body = [s for s in func.body if s not in dead] or [ast.Pass()]


def _parallel(func: ast.FunctionDef, by_name: dict[str, ScalarParam]) -> _Groups | None:
    """Folds of single numbers that interleave in the text (``quantities = [4, 2]`` and
    ``prices = [36.39, 5.64]``, or ``km_1 + km_2`` and ``hours_1 + hours_2``, for
    ``4 ... 36.39 ... 2 ... 5.64``): ``G`` folds of ``k`` numbers whose i-th numbers form the
    i-th block of ``G`` consecutive text numbers. As :class:`_Groups`: the folds as terms,
    ``slots`` their names."""
    displays: list[tuple[ast.expr, list[str]]] = []
    for fold in _folds(func):
        elts = [e.id for e in fold.terms if isinstance(e, ast.Name) and e.id in by_name]
        if len(fold.terms) >= 2 and len(elts) == len(fold.terms) == len(set(elts)):
            displays.append((fold.node, elts))
    for node, elts in displays:
        first = by_name[elts[0]]
        width = by_name[elts[1]].index - first.index
        if width < 2:
            continue
        lanes: dict[int, tuple[ast.expr, list[str]]] = {}
        for other, names in displays:
            idx = [by_name[n].index for n in names]
            offset = idx[0] - first.index
            if (
                len(names) == len(elts)
                and 0 <= offset < width
                and {by_name[n].input for n in names} == {first.input}
                and idx == [idx[0] + i * width for i in range(len(idx))]
            ):
                lanes.setdefault(offset, (other, names))
        if len(lanes) == width:
            order = [lanes[o] for o in range(width)]
            fold = _Fold(node, "lanes", [n for n, _ in order])
            return _Groups(fold, [], [names for _, names in order], [], first.index, first.input)
    return None


def _lanes(groups: _Groups, list_name: str) -> list[tuple[ast.expr, ast.expr]]:
    """Each fold of :func:`_parallel` and the same fold of its slice of the list
    (``list(L[1::2])``, ``sum(L[1::2])``)."""
    width = len(groups.slots)
    swaps: list[tuple[ast.expr, ast.expr]] = []
    for offset, node in enumerate(groups.fold.terms):
        view: ast.expr = ast.Subscript(
            value=ast.Name(id=list_name, ctx=ast.Load()),
            slice=ast.Slice(ast.Constant(offset), None, ast.Constant(width)),
            ctx=ast.Load(),
        )
        kind = "tuple" if isinstance(node, ast.Tuple) else "list"
        if isinstance(node, ast.BinOp):
            kind = "sum"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            kind = node.func.id
        view = ast.Call(func=ast.Name(id=kind, ctx=ast.Load()), args=[view], keywords=[])
        swaps.append((node, view))
    return swaps


def _rolled(
    tree: ast.Module,
    entry: str,
    groups: _Groups,
    list_name: str,
    params: Sequence[ScalarParam],
    swaps: Sequence[tuple[ast.expr, ast.expr]],
) -> str | None:
    """A copy of the solution (``tree``, its literals named) with each ``(old, new)`` of
    ``swaps`` done and the list assigned first; ``None`` when a grouped number is still
    read elsewhere."""
    by_name = {p.name: p for p in params}
    grouped = {n for block in groups.slots for n in block}
    candidate = copy.deepcopy(tree)
    cfunc = next(s for s in candidate.body if isinstance(s, ast.FunctionDef) and s.name == entry)
    for old, new in swaps:
        want = ast.dump(old)
        node = next((n for n in ast.walk(cfunc) if ast.dump(n) == want), None)
        if node is None:
            return None
        _Swap(node, new).visit(cfunc)
    cfunc.body = [s for s in cfunc.body if _self_assigned(s) not in grouped]
    _drop_dead(cfunc)
    if _reads_outside(cfunc, grouped):
        return None
    values: list[int | float] = [0] * len(grouped)
    for n in grouped:
        values[by_name[n].index - groups.start] = by_name[n].value
    assign = ast.Assign(
        targets=[ast.Name(id=list_name, ctx=ast.Store())],
        value=ast.List(elts=[ast.Constant(v) for v in values], ctx=ast.Load()),
        lineno=0,
    )
    body = cfunc.body
    docstring = bool(
        body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    )
    body.insert(int(docstring), assign)
    # The other params go back to the literals they were (``x = x`` is ``x = 4`` again).
    stores = _stores(cfunc)
    for p in params:
        if p.name in grouped:
            continue
        if p.name not in stores:
            _Restore(p.name, p.value).visit(cfunc)
            continue
        for stmt in ast.walk(cfunc):  # a variable of the code: only its ``x = x``
            if isinstance(stmt, ast.Assign) and _self_assigned(stmt) == p.name:
                stmt.value = ast.Constant(p.value)
    ast.fix_missing_locations(candidate)
    return ast.unparse(candidate) + "\n"


def roll_groups(code: str, params: Sequence[ScalarParam], entry: str = "solution") -> str | None:
    """The solution with one repeated group of lifted numbers folded over a list (see module).

    Args:
        code: The row solution (``def solution(): ...``).
        params: Its lifted scalar numbers (a number shared by two sites is one param).
        entry: The solution's function name.

    Returns:
        The rewritten source, or ``None`` when no fold of the code repeats over consecutive
        blocks of the text's numbers.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return None
    func = next((s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == entry), None)
    if func is None or len(params) < 2:
        return None
    by_name = {p.name: p for p in params}
    taken = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | set(by_name)
    # The solution names the param where it wrote the literal (``x = 4`` becomes ``x = x``).
    _ToNames({k: p.name for p in params for k in p.keys}).visit(func)
    defs = _definitions(func)
    for fold in _folds(func):
        groups = _blocks(fold, defs, by_name)
        if groups is None:
            continue
        terms = [_inline(t, defs, set(by_name), _MAX_INLINE) for t in fold.terms]
        name = _list_name(groups.slots, taken)
        swap = [(fold.node, _fold_expr(groups, name, terms))]
        rolled = _rolled(tree, entry, groups, name, params, swap)
        if rolled is not None:
            return rolled
    lanes = _parallel(func, by_name)
    if lanes is None:
        return None
    name = _list_name([list(b) for b in zip(*lanes.slots, strict=True)], taken)
    return _rolled(tree, entry, lanes, name, params, _lanes(lanes, name))


def _reads_outside(func: ast.FunctionDef, grouped: set[str]) -> bool:
    """Whether a grouped param is still read other than as a loop variable of the fold."""
    inside: set[int] = set()
    for node in ast.walk(func):
        if isinstance(node, (ast.GeneratorExp, ast.ListComp)):
            targets = {
                n.id
                for gen in node.generators
                for n in ast.walk(gen.target)
                if isinstance(n, ast.Name)
            }
            if targets & grouped:
                inside.update(id(n) for n in ast.walk(node))
    return any(
        isinstance(n, ast.Name) and n.id in grouped and id(n) not in inside for n in ast.walk(func)
    )


class _Restore(ast.NodeTransformer):
    def __init__(self, name: str, value: int | float) -> None:
        self.name = name
        self.value = value

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id == self.name and isinstance(node.ctx, ast.Load):
            return ast.Constant(self.value)
        return node
