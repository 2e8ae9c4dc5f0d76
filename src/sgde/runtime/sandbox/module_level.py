"""The sandbox policy's module-level rules: what runs when the code is imported.

Importing a code node must have no effects, so module level may hold only imports, ``def``
statements, docstrings and assignments of constant expressions, and nothing evaluated when a
top-level function is defined (decorators, default values, annotations) may call code that
the source itself defines. Rules (see :mod:`sgde.runtime.sandbox.policy`):
``missing-entry``, ``top-level-statement`` and ``import-time-code``. The rules that apply
to every node of the tree (names, attributes, imports) stay in the policy module.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Set
from dataclasses import dataclass

__all__ = ["Report", "check_module_level"]

Report = Callable[[str, str, "ast.AST | None"], None]
"""Records one violation: ``(rule, message, node)``."""

_CONSTRUCTORS = frozenset(
    {"bool", "bytes", "complex", "dict", "float", "frozenset", "int", "list", "range", "set",
     "str", "tuple", "sorted", "len", "min", "max", "sum", "abs", "round", "pow", "chr", "ord"}
)  # fmt: skip


def check_module_level(
    tree: ast.Module,
    entry: str,
    imported_names: Set[str],
    module_aliases: Mapping[str, str],
    add: Report,
) -> None:
    """Check the module-level rules of a parsed code node.

    Args:
        tree: The parsed source.
        entry: Name of the function the sandbox will call (it must be a top-level ``def``).
        imported_names: Names bound by import statements anywhere in the source.
        module_aliases: Name -> module for ``import m`` / ``import m as a``.
        add: Called once per violation.
    """
    _ModuleLevel(tree, entry, imported_names, module_aliases, add).run()


@dataclass(frozen=True)
class _ModuleLevel:
    tree: ast.Module
    entry: str
    imported_names: Set[str]
    module_aliases: Mapping[str, str]
    add: Report

    def run(self) -> None:
        body = self.tree.body
        user_callables: set[str] = set()
        has_entry = False
        for stmt in body:
            if isinstance(stmt, ast.FunctionDef):
                user_callables.add(stmt.name)
                if stmt.name == self.entry:
                    has_entry = True
            elif isinstance(stmt, ast.AsyncFunctionDef) and stmt.name == self.entry:
                self.add("missing-entry", f"'{self.entry}' must be a plain 'def', not async", stmt)
                has_entry = True
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for target in targets:
                    user_callables.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        if not has_entry:
            self.add(
                "missing-entry",
                f"no top-level 'def {self.entry}(...)'; define the entry function with def",
                None,
            )
        for stmt in body:
            if isinstance(stmt, ast.FunctionDef):
                self._check_definition_time(stmt, user_callables)
                continue
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(stmt, ast.AsyncFunctionDef):
                continue  # reported as unsupported-syntax
            if (
                isinstance(stmt, ast.Expr)
                and isinstance(stmt.value, ast.Constant)
                and isinstance(stmt.value.value, str)
            ):
                continue  # docstring / string statement: no effect
            if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                self._check_constant_assignment(stmt, user_callables)
                continue
            if isinstance(stmt, ast.ClassDef):
                continue  # reported as class-creation
            kind = type(stmt).__name__
            self.add(
                "top-level-statement",
                f"a top-level '{kind}' statement runs at import time; module level may hold "
                "only imports, defs and constant assignments — move it into a function",
                stmt,
            )

    def _check_definition_time(self, stmt: ast.FunctionDef, user_callables: set[str]) -> None:
        """Decorators, defaults and annotations of a top-level def run at import."""
        args = stmt.args
        parts: list[ast.expr] = [*stmt.decorator_list, *args.defaults]
        parts += [d for d in args.kw_defaults if d is not None]
        every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
        every += [a for a in (args.vararg, args.kwarg) if a is not None]
        parts += [a.annotation for a in every if a.annotation is not None]
        if stmt.returns is not None:
            parts.append(stmt.returns)
        for part in parts:
            for node in ast.walk(part):
                if isinstance(node, (ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)) or (
                    isinstance(node, ast.Call) and not self._pure_call(node, user_callables)
                ):
                    self.add(
                        "import-time-code",
                        f"a decorator, default value or annotation of '{stmt.name}' calls "
                        "code defined here, which would run at import time; call it inside "
                        "the function instead",
                        node,
                    )
                    return
            if part in stmt.decorator_list and not self._module_member(part, user_callables):
                self.add(
                    "import-time-code",
                    f"decorator of '{stmt.name}' is not a function of an allowed module "
                    "(e.g. functools.lru_cache); user-defined decorators run at import time",
                    part,
                )
                return

    def _module_member(self, expr: ast.expr, user_callables: set[str]) -> bool:
        """``expr`` is (a call of) a name imported from an allowed module."""
        if isinstance(expr, ast.Call):
            expr = expr.func
        root = expr
        while isinstance(root, ast.Attribute):
            root = root.value
        return (
            isinstance(root, ast.Name)
            and root.id in self.imported_names
            and root.id not in user_callables
        )

    def _check_constant_assignment(
        self, stmt: ast.Assign | ast.AnnAssign, user_callables: set[str]
    ) -> None:
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        for target in targets:
            for node in ast.walk(target):
                if not isinstance(node, (ast.Name, ast.Tuple, ast.List, ast.Starred, ast.Store)):
                    self.add(
                        "top-level-statement",
                        "top-level assignments may only bind plain names",
                        stmt,
                    )
                    return
        if stmt.value is None:
            return
        for node in ast.walk(stmt.value):
            if isinstance(node, (ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr)):
                self.add("top-level-statement", "top-level constants must be expressions", stmt)
                return
            if isinstance(node, ast.Call) and not self._pure_call(node, user_callables):
                self.add(
                    "top-level-statement",
                    "a top-level constant calls a function defined in this code, which would "
                    "run at import time; compute it inside the entry function instead",
                    stmt,
                )
                return

    def _pure_call(self, call: ast.Call, user_callables: set[str]) -> bool:
        func = call.func
        if isinstance(func, ast.Name):
            return func.id not in user_callables and (
                func.id in _CONSTRUCTORS or func.id in self.imported_names
            )
        if isinstance(func, ast.Attribute):
            root: ast.expr = func
            while isinstance(root, ast.Attribute):
                root = root.value
            return not (
                isinstance(root, ast.Name)
                and root.id in user_callables
                and root.id not in self.module_aliases
            )
        return False
