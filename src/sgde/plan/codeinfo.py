"""Static facts about a code node's source: does it parse, its ``run`` signature, its fields.

Nothing here executes code; it only reads the AST.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["CodeInfo", "EntrySignature", "analyse_code", "infer_code_fields"]


@dataclass(frozen=True)
class EntrySignature:
    """Parameters of the entry function (``run``).

    Attributes:
        line: 1-based line of the ``def`` inside the code.
        params: Names that can be passed by keyword, in order.
        required: Those of ``params`` without a default.
        positional_only: Parameters declared before ``/`` (cannot take keyword inputs).
        var_keyword: Whether the function takes ``**kwargs``.
        is_async: Whether it is ``async def`` (not allowed).
    """

    line: int
    params: tuple[str, ...]
    required: tuple[str, ...]
    positional_only: tuple[str, ...]
    var_keyword: bool
    is_async: bool


@dataclass(frozen=True)
class CodeInfo:
    """What the AST says about a code node's source.

    Attributes:
        syntax_error: Message when the code does not parse, else ``None``.
        syntax_error_line: 1-based line of the syntax error inside the code.
        entry: The entry function's signature, or ``None`` when it is not defined at
            top level (or the code does not parse).
        fields: Output fields inferred from ``return {...}`` literals in the entry
            function; ``None`` when they cannot be inferred.
    """

    syntax_error: str | None
    syntax_error_line: int | None
    entry: EntrySignature | None
    fields: tuple[str, ...] | None


def analyse_code(code: str, *, entry: str = "run") -> CodeInfo:
    """Parse ``code`` and describe its entry function.

    Args:
        code: Python source of a code node.
        entry: Name of the function the runtime calls.

    Returns:
        A :class:`CodeInfo`; never raises for bad source.
    """
    try:
        with warnings.catch_warnings():
            # e.g. SyntaxWarning for "\d" escapes: not ours to print while validating
            warnings.simplefilter("ignore")
            tree = ast.parse(code)
    except SyntaxError as exc:
        return CodeInfo(f"code does not parse: {exc.msg}", exc.lineno, None, None)
    except ValueError as exc:  # e.g. null bytes in the source
        return CodeInfo(f"code does not parse: {exc}", None, None, None)
    except (RecursionError, MemoryError):
        return CodeInfo("code does not parse: it is nested too deeply", None, None, None)
    func = _find_entry(tree, entry)
    if func is None:
        return CodeInfo(None, None, None, None)
    return CodeInfo(None, None, _signature(func), _return_fields(func))


def infer_code_fields(code: str, *, entry: str = "run") -> list[str] | None:
    """Output fields of ``entry`` inferred from its ``return {...}`` dict literals.

    Every ``return`` in the function body (nested functions excluded) must return a dict
    literal with constant string keys and no ``**`` spread; the fields are the union of
    the keys in order of first appearance. Otherwise the fields are unknown (``None``).
    """
    fields = analyse_code(code, entry=entry).fields
    return list(fields) if fields is not None else None


def _find_entry(tree: ast.Module, entry: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    found: ast.FunctionDef | ast.AsyncFunctionDef | None = None
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name == entry:
            found = stmt  # the last definition wins, as at run time
    return found


def _signature(func: ast.FunctionDef | ast.AsyncFunctionDef) -> EntrySignature:
    args = func.args
    positional = [a.arg for a in args.args]
    n_pos_defaults = len(args.defaults)
    all_positional = [a.arg for a in args.posonlyargs] + positional
    first_default = len(all_positional) - n_pos_defaults
    required_positional = [
        name for i, name in enumerate(all_positional) if i < first_default and name in positional
    ]
    kwonly = [a.arg for a in args.kwonlyargs]
    required_kwonly = [
        a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None
    ]
    return EntrySignature(
        line=func.lineno,
        params=tuple(positional + kwonly),
        required=tuple(required_positional + required_kwonly),
        positional_only=tuple(a.arg for a in args.posonlyargs),
        var_keyword=args.kwarg is not None,
        is_async=isinstance(func, ast.AsyncFunctionDef),
    )


def _own_returns(func: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.Return]:
    """``return`` statements of ``func`` itself, not of nested functions or classes."""
    stack: list[ast.AST] = list(func.body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Return):
            yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        stack.extend(ast.iter_child_nodes(node))


def _return_fields(func: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[str, ...] | None:
    returns = sorted(_own_returns(func), key=lambda r: (r.lineno, r.col_offset))
    if not returns:
        return None
    fields: list[str] = []
    for ret in returns:
        value = ret.value
        if not isinstance(value, ast.Dict):
            return None
        for key in value.keys:
            if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
                return None  # ``**spread`` (key None) or a computed key
            if key.value not in fields:
                fields.append(key.value)
    return tuple(fields)
