"""Slice the text parsing out of a teacher's ``run``: what it parsed becomes fields to copy.

A small teacher asked for a design (fields a reader copies, and ``run`` over them) often
writes ``run(text)`` that parses the text itself, with the task's rule below the parsing::

    def run(text: str):
        destination, weight = text.split(": ")[1].split(" ")
        weight = float(weight.replace("kg", ""))
        if destination in ["Lyon", "Lille"]: ...

The rule part is often right where the parsing is not (it knows one phrasing at best). This
module keeps the rule and hands the parsing to the reader: the statements that read the text
are cut, and the variables they set (``destination``, ``weight``) become ``run``'s
parameters, which the reader copies from each case. Whether the result is right is for the
verification on the training rows to say, as for any design.

What counts as parsing, statement by statement at the top of ``run``'s body:

* an assignment that reads the text;
* an assignment of names from values parsed already that does no arithmetic and calls
  nothing but conversions and string methods (``weight = float(weight.replace("kg", ""))``,
  ``m = re.search(...)``): cleaning a parsed value is the reader's job too.

A parsed variable becomes a field when the code left over reads it; one only the parsing read
(a regex match) does not; a regex match object the rule itself reads cannot be sliced
(there is no value to copy). Where the last parsing of a field ended in conversions or
normalisations (``float(...)``, ``.strip().lower()``) they are applied again to the copied
value at the top of ``run``, since the rule below compares against that form, and they type
the field (``float``: the reader copies a number). A text read
anywhere else (in an ``if``, a loop, a nested function) cannot be sliced: the design stays
refused, with the reason.

A second mistake of a small teacher is to compute over the whole text where its design names
the part it means: ``FIELDS`` lists ``word`` (and ``run`` may even take it) while ``run``
counts in ``text``. :func:`narrowed` writes, for each such field ``run`` never reads, the
variant that reads the field in place of the text; each variant is one more hypothesis for
the verification to accept or refuse.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Sliced", "narrowed", "run_def", "slice_parsing"]

# Calls a parsing step may make besides the parsed values' own methods (builtins, ``re``).
_PARSE_CALLS = frozenset({"float", "int", "str", "bool", "len", "list", "tuple", "map", "re"})
# Outer wrappers of a parsed value that ``run`` relies on: re-applied to the copied value.
_CONVERSIONS = frozenset({"float", "int", "str"})
_NORMALISERS = frozenset({"lower", "upper", "casefold", "strip", "lstrip", "rstrip", "title"})
_MATCHERS = frozenset({"search", "match", "fullmatch", "finditer"})
_ARITHMETIC = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)


@dataclass(frozen=True)
class Sliced:
    """The outcome of slicing ``run``.

    Attributes:
        fields: The parsed variables that became parameters, in the order they were parsed.
        cut: How many statements were cut.
    """

    fields: list[str]
    cut: int


def run_def(tree: ast.Module) -> ast.FunctionDef | None:
    """The top-level ``def run`` of a module (None: there is none)."""
    return next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run"), None)


def _loaded(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _targets(stmt: ast.stmt) -> list[str] | None:
    """The names a simple assignment sets (``a = ...``, ``a, b = ...``, ``a: T = ...``)."""
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
        return [stmt.target.id]
    if not isinstance(stmt, ast.Assign):
        return None
    names: list[str] = []
    for target in stmt.targets:
        elts = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
        if not all(isinstance(e, ast.Name) for e in elts):
            return None
        names += [e.id for e in elts if isinstance(e, ast.Name)]
    return names


def _value(stmt: ast.stmt) -> ast.expr | None:
    return stmt.value if isinstance(stmt, (ast.Assign, ast.AnnAssign)) else None


def _arithmetic(node: ast.AST) -> bool:
    """Whether ``node`` computes with numbers outside of an index (``words[i - 1]`` finds a
    position in the text: parsing, not the rule)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, _ARITHMETIC):
        return True
    if isinstance(node, ast.Subscript):
        return _arithmetic(node.value)
    return any(_arithmetic(child) for child in ast.iter_child_nodes(node))


def _cleans(value: ast.expr, parsed: set[str]) -> bool:
    """Whether ``value`` only cleans parsed values: it reads nothing else (bar conversions,
    ``re``) and does no arithmetic but on positions."""
    if _arithmetic(value):
        return False
    read = _loaded(value)
    return bool(read & parsed) and read <= parsed | _PARSE_CALLS


def _is_match(value: ast.expr) -> bool:
    """Whether ``value`` is a regex match object (``re.search(...)``), not a value."""
    func = value.func if isinstance(value, ast.Call) else None
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "re"
        and func.attr in _MATCHERS
    )


def _wrappers(value: ast.expr) -> list[str]:
    """The conversions and normalisations wrapped around ``value``, innermost first
    (``float(x.strip())`` -> ``["strip", "float"]`` when ``x`` is the parsing)."""
    out: list[str] = []
    node = value
    while isinstance(node, ast.Call):
        func = node.func
        if isinstance(func, ast.Name) and func.id in _CONVERSIONS and len(node.args) == 1:
            out.append(func.id)
            node = node.args[0]
        elif isinstance(func, ast.Attribute) and func.attr in _NORMALISERS and not node.args:
            out.append(func.attr)
            node = func.value
        else:
            break
    return out[::-1]


def _annotation(wrappers: list[str]) -> ast.expr | None:
    """The type the parsing gave a field, as an annotation (its read is typed so): the last
    conversion (``float(...)``), else text after a string normalisation, else none."""
    last = next((w for w in reversed(wrappers) if w in _CONVERSIONS), None)
    if last is None and wrappers:
        last = "str"
    return ast.Name(last, ast.Load()) if last else None


def _reapply(name: str, wrappers: list[str]) -> ast.stmt:
    """``name = <wrappers applied to name>``."""
    expr: ast.expr = ast.Name(name, ast.Load())
    for w in wrappers:
        if w in _CONVERSIONS:
            expr = ast.Call(ast.Name(w, ast.Load()), [expr], [])
        else:
            expr = ast.Call(ast.Attribute(expr, w, ast.Load()), [], [])
    return ast.Assign([ast.Name(name, ast.Store())], expr, lineno=0)


def slice_parsing(run: ast.FunctionDef, texts: Sequence[str]) -> Sliced | str:
    """Cut the parsing of the free-text parameters ``texts`` out of ``run`` (in place).

    Returns:
        What was sliced; or, with ``run`` untouched, why it cannot be: a text read other
        than in an assignment at the top of the body (the text read after the rule began
        included), or nothing parsed that the rest reads.
    """
    text_params = {a.arg for a in run.args.args if a.arg in texts}
    parsed: dict[str, list[str]] = {}  # name -> wrappers of its last parsing
    matches: set[str] = set()  # parsed names holding a regex match object: no value to copy
    kept: list[ast.stmt] = []
    cut = 0
    for stmt in run.body:
        read = _loaded(stmt)
        names, value = _targets(stmt), _value(stmt)
        if read & text_params:
            if names is None or value is None:
                what = type(stmt).__name__.lower()
                return f"it reads the text in a statement that is no assignment ({what})"
        elif names is None or value is None or not _cleans(value, set(parsed)):
            kept.append(stmt)
            continue
        wrapped = _wrappers(value) if len(names) == 1 else []
        for name in names:
            parsed[name] = wrapped
            matches.discard(name)
            if _is_match(value):
                matches.add(name)
        cut += 1
    used = set().union(*(_loaded(s) for s in kept)) if kept else set()
    if used & matches:
        return f"the rest of run reads a regex match of the text ({sorted(used & matches)[0]})"
    fields = [name for name in parsed if name in used and name not in text_params]
    if not fields:
        return "nothing it parses from the text is used by the rest of run"
    taken = {a.arg for a in run.args.args}
    run.args.args = [a for a in run.args.args if a.arg not in text_params] + [
        ast.arg(name, _annotation(parsed[name])) for name in fields if name not in taken
    ]
    prologue = [_reapply(f, parsed[f]) for f in fields if parsed[f]]
    run.body = [*prologue, *kept] or [ast.Pass()]
    ast.fix_missing_locations(run)
    return Sliced(fields=fields, cut=cut)


def narrowed(
    code: str,
    texts: Sequence[str],
    listed: Sequence[str] = (),
    fresh: tuple[str, str] | None = None,
) -> list[tuple[str, str]]:
    """Variants of the design ``code`` whose ``run`` reads a field in place of a free text.

    For each free-text input in ``texts`` that ``run`` reads, and each field ``run`` takes
    but never reads or ``FIELDS`` lists (``listed``) but ``run`` does not take: the code
    with every use of the text renamed to the field (the field becomes a parameter; the
    text, no longer read, is left for :func:`~sgde.optimize.sources.design.read_design` to
    drop). When there is no such field and ``fresh`` names one (``(name, description)``),
    the text is renamed to that new field and ``FIELDS`` describes it: a small teacher often
    treats the whole text as the value its rule applies to (``FIELDS = {"text": "the
    given word"}``). Returns ``(field, code)`` pairs, ``[]`` when there is none (or
    ``code`` does not parse).
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return []
    run = run_def(tree)
    if run is None or run.args.defaults:
        return []
    params = [a.arg for a in run.args.args]
    read = set().union(*(_loaded(s) for s in run.body)) if run.body else set()
    spare = [p for p in [*params, *listed] if p not in read and p not in texts]
    spare = [p for k, p in enumerate(spare) if p.isidentifier() and p not in spare[:k]]
    described: dict[str, str] = {}
    if not spare and fresh is not None:
        named = {n.id for s in run.body for n in ast.walk(s) if isinstance(n, ast.Name)}
        taken = named | set(params) | set(listed) | set(texts)
        free = [n for n in (fresh[0], f"{fresh[0]}_value", "subject_value") if n not in taken]
        spare, described = free[:1], {n: fresh[1] for n in free[:1]}
    out: list[tuple[str, str]] = []
    for text in (t for t in texts if t in read):
        for field in spare:
            variant = ast.parse(code)
            body = run_def(variant)
            assert body is not None  # the same code as ``run`` came from
            for node in (n for s in body.body for n in ast.walk(s)):
                if isinstance(node, ast.Name) and node.id == text:
                    node.id = field
            if field not in params:
                body.args.args.append(ast.arg(field, ast.Name("str", ast.Load())))
            if field in described:
                _describe(variant, field, described[field])
            out.append((field, ast.unparse(ast.fix_missing_locations(variant)) + "\n"))
    return out


def _describe(tree: ast.Module, field: str, description: str) -> None:
    """Set ``FIELDS[field] = description`` in the module's top-level ``FIELDS`` dict (one
    is put first when there is none, or when it is not a dict)."""
    key, text = ast.Constant(field), ast.Constant(description)
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "FIELDS" for t in stmt.targets
        ):
            if isinstance(stmt.value, ast.Dict):
                stmt.value.keys.append(key)
                stmt.value.values.append(text)
            else:
                stmt.value = ast.Dict([key], [text])
            return
    fields = ast.Assign([ast.Name("FIELDS", ast.Store())], ast.Dict([key], [text]), lineno=0)
    tree.body.insert(0, fields)
