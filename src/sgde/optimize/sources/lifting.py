"""Typed "solve, then lift": a verified row solution becomes a parameterised program.

The literals of ``solution()`` that occur in the row's inputs become typed parameters:

* numbers (``25%`` in the text and ``0.25`` in the code: a percentage, divided by 100),
* words, names and quoted strings (``"strawberry"``),
* dates — ``datetime.date(2024, 3, 5)`` or ``"2024-03-05"`` in the code, ``March 5, 2024``
  in the text — as ISO text,
* sequences of numbers (``[3, 9, 4]``) that run through the text: a list parameter, so a
  row with more or fewer numbers still aligns; numbers that the code folds in terms of one
  shape and that stand in the text as consecutive blocks (``4 mugs at 36.39 and 2 plates at
  5.64``: ``4 * 36.39 + 2 * 5.64``) are rolled into one such list first
  (:mod:`~sgde.optimize.sources.rolling`);
* a literal equal to a whole non-text input (or a text input read whole) is that input,
  read verbatim (``raw``).

Another row's values are aligned deterministically where positions line up (same count of
numbers, dates or quoted strings; a list absorbs a varying count; a word by the words around
it); the caller falls back to the teacher's typed extraction for the rest.
"""

from __future__ import annotations

import ast
import datetime as dt
import keyword
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sgde.optimize.lift import snippet
from sgde.optimize.sources.code import program_source
from sgde.optimize.sources.mentions import TextMentions, read_mentions
from sgde.optimize.sources.roll_scalars import roll_candidates
from sgde.optimize.sources.rolling import ScalarParam, roll_groups
from sgde.task import FieldType, TaskSpec
from sgde.task.types import TaskValueError

__all__ = ["LiftParam", "Site", "TypedLift", "align_row", "lift_row_solution", "param_type"]

_Key = tuple[int, int, int, int]
_DATE_CTORS = frozenset({"date", "datetime"})
_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_IDENT = re.compile(r"[^0-9a-zA-Z_]+")
_RESERVED = frozenset({"run", "solution", "sgde_json", "sgde_compute", "result", "value", "names"})


@dataclass(frozen=True)
class Site:
    """One literal of the code: where it is and what it holds."""

    key: _Key
    kind: str  # "number" | "string" | "date_call" | "date_string" | "list"
    value: Any


@dataclass(frozen=True)
class Source:
    """Where a literal's value comes from in a row: an input read whole, or a mention."""

    input: str
    kind: str  # "raw" | "number" | "date" | "quoted" | "word" | "run"
    index: int = 0
    length: int = 0
    percent: bool = False


@dataclass
class LiftParam:
    """One lifted parameter of a :class:`TypedLift`."""

    name: str
    kind: str  # "number" | "string" | "date" | "list"
    seed_value: Any
    source: Source
    sites: list[Site] = field(default_factory=list)
    context: str = ""


@dataclass(frozen=True)
class TypedLift:
    """A solution with its input literals turned into parameters."""

    code: str
    params: tuple[LiftParam, ...]
    seed_row: int
    taken: frozenset[str]

    def names(self) -> list[str]:
        """Parameter names in order."""
        return [p.name for p in self.params]

    def raw_inputs(self) -> dict[str, str]:
        """``param -> task input`` of the parameters read verbatim."""
        return {p.name: p.source.input for p in self.params if p.source.kind == "raw"}

    def program(self, outputs: list[str], folded: frozenset[str] = frozenset()) -> str | None:
        """The program source ``run(*params)`` with the ``folded`` params left as constants."""
        lifted = [p for p in self.params if p.name not in folded]
        try:
            tree = ast.parse(self.code)
        except (SyntaxError, ValueError, RecursionError):
            return None
        func = next(
            (s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == "solution"),
            None,
        )
        if func is None:
            return None
        mapping = {site.key: p for p in lifted for site in p.sites}
        _Rewrite(mapping).visit(func)
        func.body = [s for s in func.body if not _self_assign(s)] or [ast.Pass()]
        func.args = ast.arguments(
            posonlyargs=[],
            args=[ast.arg(arg=p.name) for p in lifted],
            vararg=None,
            kwonlyargs=[],
            kw_defaults=[],
            kwarg=None,
            defaults=[],
        )
        ast.fix_missing_locations(tree)
        return program_source(ast.unparse(tree), "solution", [p.name for p in lifted], outputs)


def _key(node: ast.AST) -> _Key:
    return (
        getattr(node, "lineno", 0),
        getattr(node, "col_offset", 0),
        getattr(node, "end_lineno", 0) or 0,
        getattr(node, "end_col_offset", 0) or 0,
    )


def _number(node: ast.AST) -> int | float | None:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    ):
        return node.value
    return None


def _is_date_ctor(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in _DATE_CTORS
    return isinstance(func, ast.Attribute) and func.attr in _DATE_CTORS


def _sites(func: ast.FunctionDef) -> list[Site]:
    """The liftable literals of ``func``, in source order."""
    consumed: set[int] = set()
    sites: list[Site] = []
    if func.body and isinstance(func.body[0], ast.Expr):
        value = func.body[0].value
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            consumed.add(id(value))
    for node in ast.walk(func):
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)) and len(node.elts) >= 2:
            nums = [_number(e) for e in node.elts]
            if all(n is not None for n in nums):
                sites.append(Site(_key(node), "list", list(nums)))
                consumed.update(id(e) for e in node.elts)
        elif isinstance(node, ast.Call) and _is_date_ctor(node.func) and len(node.args) >= 3:
            parts = [_number(a) for a in node.args[:3]]
            if all(isinstance(p, int) for p in parts):
                try:
                    iso = dt.date(*parts).isoformat()  # type: ignore[arg-type]
                except (TypeError, ValueError, OverflowError):
                    continue
                sites.append(Site(_key(node), "date_call", iso))
                consumed.update(id(a) for a in node.args[:3])
        elif isinstance(node, ast.Dict):
            consumed.update(id(k) for k in node.keys if k is not None)
        elif isinstance(node, ast.Subscript):
            # d["key"], xs[0], xs[n // 2], xs[1:] index into data: not given values
            consumed.update(id(n) for n in ast.walk(node.slice) if isinstance(n, ast.Constant))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mod, ast.FloorDiv)):
            if isinstance(node.right, ast.Constant):
                consumed.add(id(node.right))  # n % 2, n // 2: structure, not data
        elif isinstance(node, ast.keyword) and node.arg in {"format", "sep", "end"}:
            consumed.add(id(node.value))
    whole_rhs = {
        id(stmt.value)
        for stmt in ast.walk(func)
        if isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
    }
    for node in ast.walk(func):
        if id(node) in consumed or not isinstance(node, ast.Constant):
            continue
        num = _number(node)
        if num is not None:
            # 0, 1 and 2 inside an expression are structure (x - 1, n == 0, 2 * x for
            # "twice"), unless the solution names them as a given value (days = 2).
            if num in (0, 1, 2) and isinstance(num, int) and id(node) not in whole_rhs:
                continue
            sites.append(Site(_key(node), "number", num))
        elif isinstance(node.value, str) and node.value.strip():
            kind = "date_string" if _ISO.match(node.value.strip()) else "string"
            sites.append(Site(_key(node), kind, node.value))
    return sorted(sites, key=lambda s: (s.kind != "list", s.key))


def _same_number(a: Any, b: Any) -> bool:
    try:
        x, y = float(a), float(b)
    except (TypeError, ValueError):
        return False
    return abs(x - y) <= 1e-9 * max(1.0, abs(x), abs(y))


def _raw_match(site: Site, value: Any, ftype: FieldType) -> bool:
    if value is None:
        return False
    try:
        if site.kind == "number" and ftype.kind in ("integer", "number"):
            return _same_number(site.value, value) and not isinstance(value, bool)
        if site.kind in ("date_call", "date_string") and ftype.kind == "date":
            return bool(ftype.coerce(value) == site.value)
        if site.kind == "list" and ftype.kind == "list" and isinstance(value, list):
            return len(value) == len(site.value) and all(
                _same_number(a, b) for a, b in zip(value, site.value, strict=True)
            )
        if site.kind in ("string", "date_string") and ftype.kind in ("string", "enum"):
            return isinstance(value, str) and value.strip().casefold() == (
                site.value.strip().casefold()
            )
    except (TaskValueError, TypeError, ValueError):
        return False
    return False


def _text_match(site: Site, name: str, tm: TextMentions, used: set[Source]) -> Source | None:
    options: list[Source] = []
    if site.kind == "number":
        in_run = {
            k
            for u in used
            if u.input == name and u.kind == "run"
            for k in range(u.index, u.index + u.length)
        }
        options = [
            Source(name, "number", i)
            for i, m in enumerate(tm.numbers)
            if _same_number(m.value, site.value) and i not in in_run
        ]
        options += [
            Source(name, "number", i, percent=True)
            for i, m in enumerate(tm.numbers)
            if m.percent and _same_number(m.value, float(site.value) * 100)
        ]
    elif site.kind in ("date_call", "date_string"):
        options = [Source(name, "date", i) for i, m in enumerate(tm.dates) if m.value == site.value]
    elif site.kind == "string":
        want = site.value.strip().casefold()
        options = [
            Source(name, "quoted", i)
            for i, m in enumerate(tm.quoted)
            if m.value.strip().casefold() == want
        ]
        options += [
            Source(name, "word", i) for i, m in enumerate(tm.words) if m.value.casefold() == want
        ]
    elif site.kind == "list":
        values = site.value
        n = len(values)
        for i in range(len(tm.numbers) - n + 1):
            if all(_same_number(tm.numbers[i + k].value, values[k]) for k in range(n)):
                options.append(Source(name, "run", i, length=n))
    free = [o for o in options if o not in used]
    return free[0] if free else (options[0] if options else None)


def _sanitise(name: str) -> str:
    name = _IDENT.sub("_", name).strip("_").lower() or "value"
    if name[0].isdigit():
        name = "n_" + name
    if keyword.iskeyword(name) or name in _RESERVED:
        name += "_value"
    return name


def _assigned(func: ast.FunctionDef) -> dict[_Key, str]:
    """``literal key -> variable`` for statements ``variable = <literal>``."""
    counts: dict[str, int] = {}
    for node in ast.walk(func):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            counts[node.id] = counts.get(node.id, 0) + 1
    out: dict[_Key, str] = {}
    for node in ast.walk(func):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name) and counts.get(target.id) == 1:
                out[_key(node.value)] = target.id
    return out


class _Rewrite(ast.NodeTransformer):
    def __init__(self, mapping: Mapping[_Key, LiftParam]) -> None:
        self.mapping = mapping

    def _param(self, node: ast.AST) -> LiftParam | None:
        return self.mapping.get(_key(node))

    def visit_Call(self, node: ast.Call) -> ast.AST:
        param = self._param(node)
        if param is not None and _is_date_ctor(node.func):
            name = ast.Name(id=param.name, ctx=ast.Load())
            node.args = [
                ast.Call(
                    func=ast.Name(id="int", ctx=ast.Load()),
                    args=[ast.Subscript(value=name, slice=ast.Slice(lo, hi), ctx=ast.Load())],
                    keywords=[],
                )
                for lo, hi in (
                    (ast.Constant(0), ast.Constant(4)),
                    (ast.Constant(5), ast.Constant(7)),
                    (ast.Constant(8), ast.Constant(10)),
                )
            ] + node.args[3:]
            return node
        self.generic_visit(node)
        return node

    def _replace(self, node: ast.expr) -> ast.AST:
        param = self._param(node)
        if param is None:
            self.generic_visit(node)
            return node
        load = ast.Name(id=param.name, ctx=ast.Load())
        if param.source.percent:
            return ast.BinOp(left=load, op=ast.Div(), right=ast.Constant(100))
        if isinstance(node, ast.Tuple):
            return ast.Call(func=ast.Name(id="tuple", ctx=ast.Load()), args=[load], keywords=[])
        if isinstance(node, ast.Set):
            return ast.Call(func=ast.Name(id="set", ctx=ast.Load()), args=[load], keywords=[])
        if isinstance(node, ast.List):
            return ast.Call(func=ast.Name(id="list", ctx=ast.Load()), args=[load], keywords=[])
        return load

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return self._replace(node)

    def visit_List(self, node: ast.List) -> ast.AST:
        return self._replace(node)

    def visit_Tuple(self, node: ast.Tuple) -> ast.AST:
        return self._replace(node)

    def visit_Set(self, node: ast.Set) -> ast.AST:
        return self._replace(node)


def _self_assign(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Assign)
        and len(stmt.targets) == 1
        and isinstance(stmt.targets[0], ast.Name)
        and isinstance(stmt.value, ast.Name)
        and stmt.targets[0].id == stmt.value.id
    )


def _text_inputs(task: TaskSpec, inputs: Mapping[str, Any]) -> dict[str, TextMentions]:
    return {
        n: read_mentions(v)
        for n, v in inputs.items()
        if isinstance(v, str) and task.inputs.get(n, FieldType(kind="string")).kind == "string"
    }


def _context(tm: TextMentions, source: Source) -> str:
    if source.kind == "raw":
        return ""
    if source.kind == "run":
        first, last = tm.numbers[source.index], tm.numbers[source.index + source.length - 1]
        return snippet(tm.text, first.start, last.end)
    mention = tm.of_kind(source.kind)[source.index]
    return snippet(tm.text, mention.start, mention.end)


def lift_row_solution(
    code: str, task: TaskSpec, inputs: Mapping[str, Any], seed_row: int, *, roll: bool = True
) -> TypedLift | str:
    """Lift the literals of ``solution()`` found in the row's inputs into typed parameters.

    With ``roll``, numbers that repeat in blocks through a text and through a fold of the
    code become one list parameter (:func:`~sgde.optimize.sources.rolling.roll_groups`).

    Returns:
        The lift, or why nothing could be lifted (no ``solution``, no literal in the inputs).
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError) as exc:
        return f"the code does not parse: {exc}"
    func = next(
        (s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == "solution"), None
    )
    if func is None:
        return "the code defines no function solution()"
    texts = _text_inputs(task, inputs)
    assigned = _assigned(func)
    taken = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    taken |= {a.arg for a in ast.walk(tree) if isinstance(a, ast.arg)}
    by_value: dict[tuple[str, str], LiftParam] = {}
    used: set[Source] = set()
    params: list[LiftParam] = []
    names: set[str] = set()
    for site in _sites(func):
        kind = {"date_call": "date", "date_string": "date"}.get(site.kind, site.kind)
        vkey = (kind, repr(site.value).casefold() if kind == "string" else repr(site.value))
        if vkey in by_value:
            by_value[vkey].sites.append(site)
            continue
        source: Source | None = None
        for name, ftype in task.inputs.items():
            if name not in texts and _raw_match(site, inputs.get(name), ftype):
                source = Source(name, "raw")
                break
            if name in texts and site.kind in ("string", "date_string"):
                whole = inputs.get(name)
                if (
                    isinstance(whole, str)
                    and whole.strip().casefold() == str(site.value).strip().casefold()
                ):
                    source = Source(name, "raw")
                    break
        if source is None:
            for name, tm in texts.items():
                source = _text_match(site, name, tm, used)
                if source is not None:
                    break
        if source is None:
            continue
        used.add(source)
        var = assigned.get(site.key) if source.kind != "raw" else None
        if source.kind == "raw":
            base = _sanitise(source.input)
        elif var:
            base = _sanitise(var)
        else:
            base = f"{'numbers' if kind == 'list' else kind}_{len(params) + 1}"
        pname, k = base, 2
        while pname in names or (source.kind != "raw" and pname in taken and pname != var):
            pname, k = f"{base}_{k}", k + 1
        names.add(pname)
        ctx = _context(texts[source.input], source) if source.kind != "raw" else ""
        value = site.value
        if source.percent:
            value = float(site.value) * 100
            value = int(value) if float(value).is_integer() else value
        param = LiftParam(pname, kind, value, source, [site], ctx)
        by_value[vkey] = param
        params.append(param)
    scalars = [
        ScalarParam(p.name, p.source.input, p.source.index, p.sites[0].value, keys)
        for p in params
        if p.source.kind == "number" and not p.source.percent
        for keys in [tuple(site.key for site in p.sites)]
    ]
    numbers = {n: [m.value for m in tm.numbers] for n, tm in texts.items()}
    runs = [
        (site.key, p.source.input, p.source.index)
        for p in params
        if p.source.kind == "run"
        for site in p.sites
    ]
    candidates = roll_candidates(code, scalars, numbers, runs)
    rolled = roll_groups(code, candidates) if roll else None
    if rolled is not None:
        again = lift_row_solution(rolled, task, inputs, seed_row, roll=False)
        if isinstance(again, TypedLift) and any(p.source.kind == "run" for p in again.params):
            return again
    if not params:
        return "no literal of the solution occurs in the row's inputs"
    return TypedLift(code, tuple(params), seed_row, frozenset(taken))


def _word_anchor(seed: TextMentions, index: int, other: TextMentions) -> str | None:
    words = seed.words
    prev = words[index - 1].value.casefold() if index > 0 else None
    nxt = words[index + 1].value.casefold() if index + 1 < len(words) else None
    ow = other.words

    def pick(test: Any) -> str | None:
        hits = [ow[i].value for i in range(len(ow)) if test(i)]
        return hits[0] if len(hits) == 1 else None

    tests = []
    if prev is not None and nxt is not None:
        tests.append(
            lambda i: (
                0 < i < len(ow) - 1
                and ow[i - 1].value.casefold() == prev
                and ow[i + 1].value.casefold() == nxt
            )
        )
    if prev is not None:
        tests.append(lambda i: i > 0 and ow[i - 1].value.casefold() == prev)
    if nxt is not None:
        tests.append(lambda i: i < len(ow) - 1 and ow[i + 1].value.casefold() == nxt)
    for test in tests:
        found = pick(test)
        if found is not None:
            return found
    return None


def align_row(
    lift: TypedLift, task: TaskSpec, seed_inputs: Mapping[str, Any], inputs: Mapping[str, Any]
) -> dict[str, Any]:
    """Parameter values of another row where positions line up (missing: not aligned)."""
    seed_texts = _text_inputs(task, seed_inputs)
    texts = _text_inputs(task, inputs)
    out: dict[str, Any] = {}
    runs: dict[str, list[LiftParam]] = {}
    for p in lift.params:
        if p.source.kind == "run":
            runs.setdefault(p.source.input, []).append(p)
    for p in lift.params:
        src = p.source
        if src.kind == "raw":
            if src.input in inputs:
                out[p.name] = inputs[src.input]
            continue
        seed, other = seed_texts.get(src.input), texts.get(src.input)
        if seed is None or other is None:
            continue
        if src.kind in ("number", "run"):
            n, n2 = len(seed.numbers), len(other.numbers)
            in_runs = runs.get(src.input, [])
            if len(in_runs) > 1:
                continue
            run = in_runs[0].source if in_runs else None
            if run is None:
                if n == n2:
                    out[p.name] = other.numbers[src.index].value
                continue
            suffix = n - (run.index + run.length)
            if src.kind == "run":
                values = [m.value for m in other.numbers[run.index : n2 - suffix]]
                if values:
                    out[p.name] = values
            elif src.index < run.index:
                out[p.name] = other.numbers[src.index].value
            elif 0 <= src.index + n2 - n < n2 and n2 - suffix - run.index >= 1:
                out[p.name] = other.numbers[src.index + n2 - n].value
        elif src.kind in ("date", "quoted"):
            if len(seed.of_kind(src.kind)) == len(other.of_kind(src.kind)):
                out[p.name] = other.of_kind(src.kind)[src.index].value
        elif src.kind == "word":
            found = _word_anchor(seed, src.index, other)
            if found is not None:
                out[p.name] = found
    return out


def param_type(param: LiftParam, values: list[Any], task: TaskSpec) -> FieldType:
    """The typed parameter: from the raw input's type, else from the aligned values."""
    if param.source.kind == "raw":
        return task.inputs[param.source.input]

    def numeric(vals: list[Any]) -> FieldType:
        integral = all(isinstance(v, int) and not isinstance(v, bool) for v in vals)
        return FieldType(kind="integer" if integral else "number")

    if param.kind == "number":
        return numeric([v for v in values if v is not None] or [param.seed_value])
    if param.kind == "date":
        return FieldType(kind="date")
    if param.kind == "list":
        items = [x for v in values if isinstance(v, list) for x in v] or list(param.seed_value)
        return FieldType(kind="list", item=numeric(items))
    return FieldType(kind="string")
