"""Static (AST) policy for untrusted code-node source.

This is the first of several layers that contain teacher-written Python (see
``docs/sandbox.md``). It is pure: it parses the source, walks the tree and reports every
rule broken; it never executes, compiles to bytecode or touches the file system.

Rules (the ``rule`` of each :class:`PolicyViolation`):

=======================  ======================================================================
``syntax-error``         the source does not parse (or is too large / too deeply nested)
``missing-entry``        no top-level ``def <entry>(...)``
``top-level-statement``  module level holds something other than imports, ``def``, docstrings
                         and assignments of constant expressions (importing has no effects)
``import-not-allowed``   import of a module outside :data:`ALLOWED_IMPORTS` /
                         :data:`ALLOWED_SUBMODULES`, relative or ``*`` imports
``dunder-access``        any name, attribute, parameter, keyword or string constant of the
                         form ``__x__``, and string constants starting or ending with ``__``
                         (pieces of a dunder name built at run time) — no exceptions
``private-access``       attributes starting with ``_`` (except the namedtuple API
                         ``_asdict``, ``_replace``, ``_fields``, ``_make``,
                         ``_field_defaults``) and ``from m import _x``
``forbidden-name``       builtins that are not available: :data:`FORBIDDEN_NAMES`
``forbidden-attribute``  frame / generator / code internals and ``mro``
                         (:data:`FORBIDDEN_ATTRIBUTES`), members of allowed modules that give
                         attribute access by string or global mutable state
                         (:data:`DENIED_MODULE_MEMBERS`), and attributes of an allowed module
                         that are themselves modules (``statistics.sys``, ``json.codecs``)
``attribute-assignment`` assigning or deleting attributes (``x.a = 1``, ``del x.a``)
``class-creation``       ``class`` statements, ``type()`` with other than one argument, and any
                         use of ``type(x)`` other than comparing it (``type(x) is int``):
                         the type of a class is a metaclass that creates classes
``match-pattern``        ``match`` class patterns other than a builtin type with at most one
                         positional sub-pattern (``case int(n)``): keyword sub-patterns and
                         ``__match_args__`` read attributes by name
``import-time-code``     decorators, default values and annotations of top-level functions
                         that call functions defined in the code (they run at import)
``format-string``        ``.format`` / ``.format_map`` on anything but a string literal, or with
                         attribute / index fields (``"{0.__class__}"``, ``"{0[k]}"``)
``unsupported-syntax``   ``async def``, ``await``, ``async for``, ``async with``
=======================  ======================================================================

Imports: exactly :data:`ALLOWED_IMPORTS`, plus the submodules in :data:`ALLOWED_SUBMODULES`
(``collections.abc``). Other submodules are refused on purpose: ``json.tool`` reads files,
``re._parser`` is private.
"""

from __future__ import annotations

import ast
import importlib
import re
import string
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sgde.runtime.sandbox.module_level import check_module_level
from sgde.runtime.sandbox.rules import (
    ALLOWED_IMPORTS,
    ALLOWED_SUBMODULES,
    DENIED_MODULE_MEMBERS,
    FORBIDDEN_ATTRIBUTES,
    FORBIDDEN_NAMES,
    MAX_SOURCE_CHARS,
    NAMEDTUPLE_ATTRIBUTES,
    RULES,
    SAFE_BUILTINS,
)

__all__ = [
    "ALLOWED_IMPORTS",
    "ALLOWED_SUBMODULES",
    "DENIED_MODULE_MEMBERS",
    "FORBIDDEN_ATTRIBUTES",
    "FORBIDDEN_NAMES",
    "MAX_SOURCE_CHARS",
    "NAMEDTUPLE_ATTRIBUTES",
    "RULES",
    "SAFE_BUILTINS",
    "PolicyViolation",
    "check_source",
    "module_valued_members",
]

_NAMED_BINDERS = (
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.ExceptHandler,
    ast.MatchAs,
    ast.MatchStar,
)
_DUNDER = re.compile(r"^__\w*__$")
_DUNDER_PIECE = re.compile(r"^__|__$")
_MATCH_TYPES = frozenset(
    {"bool", "bytearray", "bytes", "dict", "float", "frozenset", "int", "list", "set", "str",
     "tuple"}
)  # fmt: skip
_COMPARISONS = (ast.Is, ast.IsNot, ast.Eq, ast.NotEq, ast.In, ast.NotIn)


@dataclass(frozen=True)
class PolicyViolation:
    """One broken rule.

    Attributes:
        rule: The rule name (see the module docstring and :data:`RULES`).
        message: What is wrong and what to do instead.
        line: 1-based line in the source, if known.
    """

    rule: str
    message: str
    line: int | None = None

    def format(self) -> str:
        """Render as ``line N: [rule] message``."""
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}[{self.rule}] {self.message}"


def module_valued_members(module_name: str) -> frozenset[str]:
    """Public attributes of an allowed module that are themselves modules.

    ``statistics.sys`` or ``json.codecs`` would hand out modules outside the allow-list;
    the policy refuses them and the sandbox worker leaves them out of its module views.

    Args:
        module_name: A name in :data:`ALLOWED_IMPORTS` or :data:`ALLOWED_SUBMODULES`.

    Returns:
        The attribute names whose values are modules.
    """
    module = importlib.import_module(module_name)
    return frozenset(
        name
        for name, value in vars(module).items()
        if isinstance(value, types.ModuleType) and f"{module_name}.{name}" not in ALLOWED_SUBMODULES
    )


def check_source(code: str, *, entry: str = "run") -> list[PolicyViolation]:
    """Check untrusted source against the sandbox policy.

    Args:
        code: Python source of a code node.
        entry: Name of the function the sandbox will call.

    Returns:
        Every violation found, sorted by line; empty when the code is acceptable.
    """
    if len(code) > MAX_SOURCE_CHARS:
        return [
            PolicyViolation(
                "syntax-error",
                f"code is {len(code)} characters long; the limit is {MAX_SOURCE_CHARS}",
            )
        ]
    try:
        tree = ast.parse(code, filename="<sandbox>", mode="exec")
    except SyntaxError as exc:
        return [PolicyViolation("syntax-error", f"{exc.msg}", exc.lineno)]
    except (ValueError, RecursionError, MemoryError) as exc:
        return [PolicyViolation("syntax-error", f"code cannot be parsed: {exc}")]
    checker = _Checker(tree, entry)
    try:
        checker.run()
    except RecursionError:
        return [PolicyViolation("syntax-error", "code is too deeply nested")]
    unique = {(v.line or 0, v.rule, v.message): v for v in checker.violations}
    return [unique[k] for k in sorted(unique)]


def _format_fields(template: str) -> Iterator[str]:
    """Field names of a format template, including nested fields in format specs."""
    for _, field, spec, _ in string.Formatter().parse(template):
        if field is not None:
            yield field
        if spec:
            yield from _format_fields(spec)


class _Checker:
    def __init__(self, tree: ast.Module, entry: str) -> None:
        self.tree = tree
        self.entry = entry
        self.violations: list[PolicyViolation] = []
        self.module_aliases: dict[str, str] = {}
        self.bound: set[str] = set()
        self.imported_names: set[str] = set()
        self._members: dict[str, frozenset[str]] = {}
        self.parents: dict[int, ast.AST] = {}

    def members(self, module: str) -> frozenset[str]:
        if module not in self._members:
            self._members[module] = module_valued_members(module)
        return self._members[module]

    def add(self, rule: str, message: str, node: ast.AST | None) -> None:
        line = getattr(node, "lineno", None) if node is not None else None
        self.violations.append(PolicyViolation(rule, message, line))

    def run(self) -> None:
        nodes = list(ast.walk(self.tree))
        for node in nodes:
            for child in ast.iter_child_nodes(node):
                self.parents[id(child)] = node
        self._collect_bindings(nodes)
        check_module_level(
            self.tree, self.entry, self.imported_names, self.module_aliases, self.add
        )
        for node in nodes:
            self._check_node(node)

    # -- bindings ---------------------------------------------------------------------------

    def _collect_bindings(self, nodes: Iterable[ast.AST]) -> None:
        for node in nodes:
            if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
                self.bound.add(node.id)
            elif isinstance(node, ast.arg):
                self.bound.add(node.arg)
            elif isinstance(node, _NAMED_BINDERS):
                if node.name:
                    self.bound.add(node.name)
            elif isinstance(node, ast.MatchMapping) and node.rest:
                self.bound.add(node.rest)
            elif isinstance(node, ast.alias):
                self.bound.add((node.asname or node.name).partition(".")[0])
                self.imported_names.add((node.asname or node.name).partition(".")[0])
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.module_aliases[alias.asname] = alias.name
                    else:
                        top = alias.name.partition(".")[0]
                        self.module_aliases[top] = top

    # -- every node -------------------------------------------------------------------------

    def _check_node(self, node: ast.AST) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            self._check_import(node)
        elif isinstance(node, ast.Name):
            self._check_identifier(node.id, node, "name")
            if node.id == "type" and isinstance(node.ctx, ast.Load) and "type" not in self.bound:
                self._check_type_use(node)
            if (
                isinstance(node.ctx, ast.Load)
                and node.id in FORBIDDEN_NAMES
                and node.id not in self.bound
            ):
                self.add(
                    "forbidden-name",
                    f"'{node.id}' is not available in the sandbox",
                    node,
                )
        elif isinstance(node, ast.Attribute):
            self._check_attribute(node.attr, node)
            if isinstance(node.ctx, (ast.Store, ast.Del)):
                self.add(
                    "attribute-assignment",
                    f"assigning or deleting attribute '.{node.attr}' is not allowed; "
                    "use dicts or return new values",
                    node,
                )
            self._check_module_member(node)
            if node.attr in {"format", "format_map"}:
                self._check_format(node)
        elif isinstance(node, ast.arg):
            self._check_identifier(node.arg, node, "parameter")
        elif isinstance(node, ast.keyword) and node.arg is not None:
            self._check_identifier(node.arg, node, "keyword")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self._check_identifier(node.name, node, "function name")
            if isinstance(node, ast.AsyncFunctionDef):
                self.add("unsupported-syntax", "'async def' is not supported", node)
        elif isinstance(node, ast.ClassDef):
            self.add(
                "class-creation",
                f"class '{node.name}' cannot be defined in sandboxed code; use dicts, tuples "
                "or collections.namedtuple",
                node,
            )
        elif isinstance(node, (ast.Await, ast.AsyncFor, ast.AsyncWith)):
            self.add("unsupported-syntax", "async constructs are not supported", node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _DUNDER.match(node.value):
                self.add("dunder-access", f"string '{node.value}' names a dunder", node)
            elif _DUNDER_PIECE.search(node.value):
                self.add(
                    "dunder-access",
                    f"string {node.value[:40]!r} starts or ends with '__' (a piece of a "
                    "dunder name)",
                    node,
                )
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            for name in node.names:
                self._check_identifier(name, node, "name")
        elif isinstance(node, ast.ExceptHandler) and node.name:
            self._check_identifier(node.name, node, "name")
        elif isinstance(node, ast.MatchClass):
            for attr in node.kwd_attrs:
                self._check_attribute(attr, node)
            self._check_match_class(node)

    def _check_identifier(self, name: str, node: ast.AST, what: str) -> None:
        if _DUNDER.match(name):
            self.add("dunder-access", f"{what} '{name}' is a dunder and not allowed", node)

    def _check_attribute(self, attr: str, node: ast.AST) -> None:
        if _DUNDER.match(attr):
            self.add("dunder-access", f"attribute '.{attr}' is a dunder and not allowed", node)
        elif attr.startswith("_") and attr not in NAMEDTUPLE_ATTRIBUTES:
            self.add("private-access", f"private attribute '.{attr}' is not allowed", node)
        elif attr in FORBIDDEN_ATTRIBUTES:
            self.add("forbidden-attribute", f"attribute '.{attr}' is not allowed", node)

    def _check_module_member(self, node: ast.Attribute) -> None:
        if not isinstance(node.value, ast.Name):
            return
        module = self.module_aliases.get(node.value.id)
        if module is None:
            return
        if f"{module}.{node.attr}" in ALLOWED_SUBMODULES:
            return
        if module in ALLOWED_IMPORTS | ALLOWED_SUBMODULES and node.attr in self.members(module):
            self.add(
                "forbidden-attribute",
                f"'{module}.{node.attr}' is a module outside the allow-list",
                node,
            )

    def _check_import(self, node: ast.Import | ast.ImportFrom) -> None:
        allowed = ", ".join(sorted(ALLOWED_IMPORTS | ALLOWED_SUBMODULES))
        if isinstance(node, ast.Import):
            for alias in node.names:
                self._check_identifier(alias.asname or "", node, "name")
                if alias.name not in ALLOWED_IMPORTS | ALLOWED_SUBMODULES:
                    self.add(
                        "import-not-allowed",
                        f"import of '{alias.name}' is not allowed; allowed: {allowed}",
                        node,
                    )
            return
        if node.level:
            self.add("import-not-allowed", "relative imports are not allowed", node)
            return
        module = node.module or ""
        if module not in ALLOWED_IMPORTS | ALLOWED_SUBMODULES:
            self.add(
                "import-not-allowed",
                f"import from '{module}' is not allowed; allowed: {allowed}",
                node,
            )
            return
        denied = DENIED_MODULE_MEMBERS.get(module, frozenset())
        submodules = self.members(module)
        for alias in node.names:
            name = alias.name
            self._check_identifier(alias.asname or "", node, "name")
            if name == "*":
                self.add(
                    "import-not-allowed",
                    f"'from {module} import *' is not allowed; import names explicitly",
                    node,
                )
            elif _DUNDER.match(name):
                self.add("dunder-access", f"importing '{name}' is not allowed", node)
            elif name.startswith("_"):
                self.add("private-access", f"importing private '{module}.{name}'", node)
            elif name in denied:
                self.add("forbidden-attribute", f"'{module}.{name}' is not allowed", node)
            elif name in submodules and f"{module}.{name}" not in ALLOWED_SUBMODULES:
                self.add(
                    "import-not-allowed",
                    f"'{module}.{name}' is a module outside the allow-list",
                    node,
                )

    def _check_match_class(self, node: ast.MatchClass) -> None:
        cls = node.cls
        name = cls.id if isinstance(cls, ast.Name) else None
        if name is None or name not in _MATCH_TYPES or name in self.bound:
            self.add(
                "match-pattern",
                "class patterns may only name a builtin type "
                f"({', '.join(sorted(_MATCH_TYPES))}), as in 'case int(n)'; other classes "
                "read attributes through __match_args__ — test with isinstance() instead",
                node,
            )
        if node.kwd_attrs:
            self.add(
                "match-pattern",
                f"keyword sub-patterns ({', '.join(node.kwd_attrs)}=...) read attributes by "
                "name; match the value itself and read what you need explicitly",
                node,
            )
        if len(node.patterns) > 1:
            self.add(
                "match-pattern",
                "a class pattern takes at most one positional sub-pattern ('case int(n)')",
                node,
            )

    def _check_type_use(self, node: ast.Name) -> None:
        """``type`` may only be called with one argument, and the result only compared."""
        parent = self.parents.get(id(node))
        call = parent if isinstance(parent, ast.Call) and parent.func is node else None
        if call is None:
            self.add(
                "class-creation",
                "'type' may only be called as type(x) and compared (type(x) is int); use "
                "isinstance() — the type object itself creates classes",
                node,
            )
            return
        if len(call.args) != 1 or call.keywords:
            self.add(
                "class-creation",
                "type() takes exactly one argument in the sandbox (three-argument type() "
                "creates classes)",
                call,
            )
            return
        outer = self.parents.get(id(call))
        compared = isinstance(outer, ast.Compare) and all(
            isinstance(op, _COMPARISONS) for op in outer.ops
        )
        shown = (
            isinstance(outer, ast.Call)
            and isinstance(outer.func, ast.Name)
            and outer.func.id in ("str", "repr")
            and outer.func.id not in self.bound
        )
        if not (compared or shown):
            self.add(
                "class-creation",
                "the result of type(x) may only be compared (type(x) is int, type(x) in "
                "(int, float)) or shown (str(type(x))); use isinstance() otherwise",
                call,
            )

    def _check_format(self, node: ast.Attribute) -> None:
        base = node.value
        if not (isinstance(base, ast.Constant) and isinstance(base.value, str)):
            self.add(
                "format-string",
                f"'.{node.attr}' is only allowed on a string literal; use an f-string or "
                "'literal'.format(...)",
                node,
            )
            return
        try:
            fields = list(_format_fields(base.value))
        except ValueError as exc:
            self.add("format-string", f"invalid format string: {exc}", node)
            return
        for field in fields:
            if "." in field or "[" in field:
                self.add(
                    "format-string",
                    f"format field '{{{field}}}' accesses attributes or items; pass the "
                    "value itself as an argument",
                    node,
                )
