"""Teacher code as data: instrumentation, the JSON harness, and running it in the sandbox.

Teacher-written code is hostile input. It is parsed here (never executed) and run only
through a :class:`~sgde.runtime.calls.CodeRunner` (the sandbox). Two rewrites make its
results usable:

* :func:`instrument` makes an entry function return ``{"result": <value>, "vars": {...}}``
  with the intermediate values it assigned — the one home of instrumentation (the GSM
  aligner in :mod:`sgde.evaluation` uses it too).
* :func:`harnessed` appends an entry that converts the result to JSON inside the sandbox
  (dates to ISO text, sets and tuples to lists, decimals and fractions to floats), so a
  solution returning ``datetime.date`` or a ``set`` is still comparable.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sgde.errors import SandboxError
from sgde.runtime.calls import CodeRunner

__all__ = [
    "HARNESS_ENTRY",
    "CodeRun",
    "clean_code",
    "entry_params",
    "harnessed",
    "instrument",
    "program_source",
    "run_harnessed",
    "wrap_run",
]

HARNESS_ENTRY = "sgde_entry"
"""Name of the entry function :func:`harnessed` appends."""

_JSON_HELPER = """
import datetime as sgde_datetime
import decimal as sgde_decimal
import fractions as sgde_fractions


def sgde_json(value, depth=0):
    if depth > 12:
        return None
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return None
        return value
    if isinstance(value, sgde_datetime.datetime):
        if value.hour == 0 and value.minute == 0 and value.second == 0:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, sgde_datetime.date):
        return value.isoformat()
    if isinstance(value, (sgde_decimal.Decimal, sgde_fractions.Fraction)):
        return float(value)
    if isinstance(value, dict):
        return {str(k): sgde_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sgde_json(v, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((sgde_json(v, depth + 1) for v in value), key=repr)
    return None
"""

_ENTRY_TEMPLATE = """

def {harness}({signature}):
    out = {entry}({call})
    if {instrumented} and isinstance(out, dict) and set(out) == {{"result", "vars"}}:
        variables = {{}}
        for name, value in out["vars"].items():
            converted = sgde_json(value)
            if converted is not None:
                variables[name] = converted
        return {{"result": sgde_json(out["result"]), "vars": variables}}
    return {{"result": sgde_json(out), "vars": {{}}}}
"""


class _Instrument(ast.NodeTransformer):
    def __init__(self, names: list[str]) -> None:
        self.names = names

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        return node  # nested helpers keep their own returns

    def visit_Lambda(self, node: ast.Lambda) -> ast.Lambda:
        return node

    def visit_Return(self, node: ast.Return) -> ast.Return:
        trace = ast.Dict(
            keys=[ast.Constant(n) for n in self.names],
            values=[ast.Name(id=n, ctx=ast.Load()) for n in self.names],
        )
        value = ast.Dict(
            keys=[ast.Constant("result"), ast.Constant("vars")],
            values=[node.value or ast.Constant(None), trace],
        )
        return ast.copy_location(ast.Return(value=value), node)


def instrument(code: str, entry: str = "run") -> str:
    """Make ``entry`` return ``{"result": <value>, "vars": {<intermediate>: value, ...}}``.

    The intermediates are the names assigned by top-level statements of ``entry`` before each
    ``return`` (straight-line code; names bound only inside branches or loops are left out, as
    they may be unbound there). Parameters are not intermediates.

    Args:
        code: Python source defining ``entry``.
        entry: The function to instrument.

    Returns:
        The rewritten source.

    Raises:
        SyntaxError: when ``code`` does not parse.
    """
    tree = ast.parse(code)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == entry:
            params = {a.arg for a in node.args.args}
            seen: list[str] = []
            new_body: list[ast.stmt] = []
            for stmt in node.body:
                if any(isinstance(n, ast.Return) for n in ast.walk(stmt)):
                    stmt = _Instrument(list(seen)).visit(stmt)
                new_body.append(stmt)
                if isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                    targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                    for t in targets:
                        if isinstance(t, ast.Name) and t.id not in params and t.id not in seen:
                            seen.append(t.id)
            node.body = new_body
    ast.fix_missing_locations(tree)
    return ast.unparse(tree) + "\n"


def _constant_expr(node: ast.AST) -> bool:
    return all(
        isinstance(
            n,
            (
                ast.Constant,
                ast.Tuple,
                ast.List,
                ast.Dict,
                ast.Set,
                ast.UnaryOp,
                ast.BinOp,
                ast.operator,
                ast.unaryop,
                ast.Load,
            ),
        )
        for n in ast.walk(node)
    )


def clean_code(code: str) -> str:
    """Teacher code without the top-level statements no program needs.

    Models often append a usage example (``print(solution())``, an ``if __name__ ...``
    block, a bare call); the sandbox refuses any top-level statement with effects. Kept:
    imports, function definitions, docstrings and assignments of constants. Code that does
    not parse is returned unchanged (verification then reports why).
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return code
    kept: list[ast.stmt] = [
        stmt
        for stmt in tree.body
        if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef))
        or (isinstance(stmt, ast.Assign) and _constant_expr(stmt.value))
        or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant))
    ]
    if len(kept) == len(tree.body):
        return code
    tree.body = kept
    return ast.unparse(tree) + "\n"


def entry_params(code: str, entry: str) -> list[str] | None:
    """Parameter names of the top-level function ``entry`` (``None`` if absent/unparsable)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == entry:
            return [a.arg for a in node.args.args]
    return None


def harnessed(code: str, entry: str, params: list[str], *, trace: bool = True) -> str:
    """``code`` plus an entry :data:`HARNESS_ENTRY` returning ``{"result", "vars"}`` as JSON.

    Args:
        code: Source defining ``entry(*params)``.
        entry: The function to call.
        params: Its parameters (the harness takes the same keyword arguments).
        trace: Instrument ``entry`` to report its intermediate values too.
    """
    body = code
    instrumented = False
    if trace:
        try:
            body = instrument(code, entry)
            instrumented = True
        except (SyntaxError, ValueError, RecursionError):
            body = code
    signature = ", ".join(params)
    call = ", ".join(f"{p}={p}" for p in params)
    return (
        body.rstrip()
        + "\n\n"
        + _JSON_HELPER
        + _ENTRY_TEMPLATE.format(
            harness=HARNESS_ENTRY,
            signature=signature,
            entry=entry,
            call=call,
            instrumented=instrumented,
        )
    )


@dataclass(frozen=True)
class CodeRun:
    """The outcome of one sandboxed run: the JSON result and intermediates, or an error."""

    result: Any = None
    variables: dict[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the code ran and returned."""
        return self.error is None


async def run_harnessed(
    sandbox: CodeRunner,
    code: str,
    entry: str,
    kwargs: Mapping[str, Any],
    *,
    trace: bool = True,
) -> CodeRun:
    """Run ``entry(**kwargs)`` of untrusted ``code`` in the sandbox through the JSON harness.

    Never raises on bad code: a sandbox refusal or exception becomes ``CodeRun.error``.
    """
    program = harnessed(code, entry, list(kwargs), trace=trace)
    try:
        out = await sandbox.call(program, dict(kwargs), entry=HARNESS_ENTRY)
    except SandboxError as exc:
        return CodeRun(error=exc.message)
    if not isinstance(out, dict) or "result" not in out:
        return CodeRun(error="the harness returned no result")
    variables = out.get("vars")
    return CodeRun(out["result"], dict(variables) if isinstance(variables, dict) else {})


_SHAPE_TEMPLATE = """

def run({signature}):
    value = sgde_json({entry}({call}))
    names = {names!r}
    if isinstance(value, dict) and all(n in value for n in names):
        return {{n: value[n] for n in names}}
    if len(names) == 1:
        if isinstance(value, dict) and len(value) == 1:
            return {{names[0]: list(value.values())[0]}}
        if not isinstance(value, dict):
            return {{names[0]: value}}
    if isinstance(value, list) and len(value) == len(names):
        return dict(zip(names, value))
    raise ValueError("the computation did not return the fields " + ", ".join(names))
"""


def program_source(
    code: str,
    entry: str,
    params: list[str],
    outputs: list[str],
    optional: Sequence[str] = (),
) -> str | None:
    """A self-contained program: ``code`` plus ``run(*params)`` returning the output fields
    (``optional``: more parameters, ``None`` unless given, passed on to ``entry`` too).

    ``run`` calls ``entry``, converts its result to JSON values (dates to ISO text, sets to
    lists) and shapes it as ``{output: value}`` — a dict with the fields, a one-field
    answer, or a list of values in field order. ``None`` when ``code`` does not parse or
    already defines ``run`` (and ``entry`` is not ``run``).
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return None
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    if entry not in defined:
        return None
    if entry == "run":
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == "run":
                node.name = "sgde_compute"
        entry = "sgde_compute"
    elif "run" in defined:
        return None
    body = ast.unparse(tree)
    return (
        body.rstrip()
        + "\n"
        + _JSON_HELPER
        + _SHAPE_TEMPLATE.format(
            signature=", ".join([*params, *(f"{p}=None" for p in optional)]),
            entry=entry,
            call=", ".join(f"{p}={p}" for p in [*params, *optional]),
            names=list(outputs),
        )
    )


def wrap_run(
    code: str,
    *,
    inner: str,
    signature: Sequence[str],
    call: Sequence[str],
    texts: Sequence[str],
    body: Sequence[str],
    head: str = "",
    between: str = "",
) -> str:
    """``code`` (``def run(...)``) with ``run`` renamed ``inner``, and a new ``run`` before
    it: over ``signature`` and the free-text inputs ``texts`` not in it, it joins the texts
    as ``sgde_text`` (one line each), runs the ``body`` lines, and returns ``inner`` called
    with ``call`` by keyword. ``head`` (imports) goes first, ``between`` (helpers) between
    the two functions. One shape for the wrappers sgde writes around a design's rule."""
    extra = [t for t in texts if t not in signature]
    joined = " + '\\n' + ".join(f"str({t})" for t in texts) or "''"
    lines = [
        f"def run({', '.join([*signature, *extra])}):",
        f"    sgde_text = {joined}",
        *body,
        f"    return {inner}({', '.join(f'{p}={p}' for p in call)})",
    ]
    renamed = re.sub(r"^def run\(", f"def {inner}(", code, count=1, flags=re.M)
    parts = [head + renamed.rstrip(), *([between] if between else []), "\n".join(lines)]
    return "\n\n\n".join(parts) + "\n"
