"""The sandbox policy's tables: allowed imports, denied names and members, rule names.

Data only; :mod:`sgde.runtime.sandbox.policy` applies them, and the pool hands the import and
builtin tables to the worker.
"""

from __future__ import annotations

import types
from collections.abc import Mapping

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
]

ALLOWED_IMPORTS: frozenset[str] = frozenset(
    {
        "math",
        "fractions",
        "decimal",
        "statistics",
        "re",
        "datetime",
        "itertools",
        "functools",
        "collections",
        "json",
        "string",
    }
)
"""Top-level modules sandboxed code may import."""

ALLOWED_SUBMODULES: frozenset[str] = frozenset({"collections.abc"})
"""Submodules of allowed modules that may be imported too (an explicit list)."""

DENIED_MODULE_MEMBERS: Mapping[str, frozenset[str]] = types.MappingProxyType(
    {
        # getattr/setattr by string (update_wrapper(dst, src, assigned=("x",))), or eval of
        # string annotations through typing.get_type_hints (singledispatch.register).
        "functools": frozenset(
            {
                "update_wrapper",
                "wraps",
                "singledispatch",
                "singledispatchmethod",
                "total_ordering",
                "cached_property",
            }
        ),
        # Formatter().get_field("0.__class__", ...) returns the object: getattr by string.
        "string": frozenset({"Formatter"}),
        # Process-wide mutable templates; mutating them leaks into later calls.
        "decimal": frozenset({"DefaultContext", "BasicContext", "ExtendedContext"}),
    }
)
"""Public members of allowed modules that sandboxed code may not use."""

FORBIDDEN_NAMES: frozenset[str] = frozenset(
    {
        "exec",
        "eval",
        "compile",
        "open",
        "globals",
        "locals",
        "vars",
        "dir",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "input",
        "breakpoint",
        "help",
        "memoryview",
        "exit",
        "quit",
        "super",
        "object",
        "classmethod",
        "staticmethod",
        "property",
        "id",
        "copyright",
        "credits",
        "license",
        "aiter",
        "anext",
    }
)
"""Builtin names refused when used without being bound in the code itself."""

FORBIDDEN_ATTRIBUTES: frozenset[str] = frozenset(
    {
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "gi_running",
        "gi_suspended",
        "cr_frame",
        "cr_code",
        "cr_await",
        "cr_origin",
        "cr_running",
        "ag_frame",
        "ag_code",
        "ag_await",
        "ag_running",
        "f_back",
        "f_builtins",
        "f_code",
        "f_globals",
        "f_locals",
        "f_lasti",
        "f_trace",
        "tb_frame",
        "tb_next",
        "tb_lasti",
        "co_code",
        "co_consts",
        "co_names",
        "co_varnames",
        "mro",
        *(name for names in DENIED_MODULE_MEMBERS.values() for name in names),
    }
)
"""Attribute names refused on any object."""

NAMEDTUPLE_ATTRIBUTES: frozenset[str] = frozenset(
    {"_asdict", "_replace", "_fields", "_make", "_field_defaults"}
)
"""Underscore attributes that are public API (``collections.namedtuple``)."""

SAFE_BUILTINS: frozenset[str] = frozenset(
    {
        # functions
        "abs", "all", "any", "ascii", "bin", "callable", "chr", "divmod", "enumerate",
        "filter", "format", "hash", "hex", "isinstance", "issubclass", "iter", "len", "map",
        "max", "min", "next", "oct", "ord", "pow", "print", "range", "repr", "reversed",
        "round", "sorted", "sum", "zip", "type",
        # types
        "bool", "bytearray", "bytes", "complex", "dict", "float", "frozenset", "int", "list",
        "set", "slice", "str", "tuple",
        # constants
        "Ellipsis", "NotImplemented", "None", "True", "False",
        # exceptions
        "ArithmeticError", "AssertionError", "AttributeError", "BaseException", "Exception",
        "FloatingPointError", "ImportError", "IndexError", "KeyError", "LookupError",
        "MemoryError", "NameError", "NotImplementedError", "OverflowError", "RecursionError",
        "RuntimeError", "StopIteration", "TypeError", "UnboundLocalError", "UnicodeError",
        "ValueError", "ZeroDivisionError",
    }
)  # fmt: skip
"""Builtins present at run time (``type`` is replaced by a one-argument form, and
``__import__`` by one that only returns views of the allowed modules)."""

RULES: Mapping[str, str] = types.MappingProxyType(
    {
        "syntax-error": "the code does not parse",
        "missing-entry": "no top-level def of the entry function",
        "top-level-statement": "module level may hold only imports, defs and constants",
        "import-not-allowed": "import outside the allow-list",
        "dunder-access": "names/attributes/strings of the form __x__",
        "private-access": "attributes starting with an underscore",
        "forbidden-name": "builtin that is not available in the sandbox",
        "forbidden-attribute": "introspection attribute or denied module member",
        "attribute-assignment": "assigning or deleting attributes",
        "class-creation": "class statements, three-argument type(), type(x) not compared",
        "match-pattern": "match class patterns beyond `case <builtin type>(x)`",
        "import-time-code": "decorators/defaults/annotations of top-level defs calling code",
        "format-string": "str.format with a non-literal template or attribute/index fields",
        "unsupported-syntax": "async constructs",
    }
)
"""Every rule name with a one-line description (docs and error hints use it)."""

MAX_SOURCE_CHARS = 200_000
"""Longer sources are refused (``syntax-error``) before parsing."""
