"""Prompt rendering: jinja2 templates over a node's resolved inputs.

Templates come from plan files (possibly written by a teacher model), so they run in a
:class:`jinja2.sandbox.SandboxedEnvironment` with :class:`jinja2.StrictUndefined`: a
variable that is not an input is an error, not an empty string. Printed values are
formatted for models: integral floats print without ``.0`` and no number prints in
scientific notation (``1.2e7`` prints as ``12000000``); ``tojson`` emits plain JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from importlib import resources
from typing import Any

import jinja2
import jinja2.sandbox

from sgde.errors import ExecutionError

__all__ = ["PromptRenderer", "format_value", "load_prompt", "prompt_environment"]

_CACHE_LIMIT = 512


def format_value(value: Any) -> Any:
    """Format a value printed by a template (numbers without ``.0`` or exponents).

    Args:
        value: A value from a ``{{ ... }}`` expression.

    Returns:
        A string for floats; other values unchanged (jinja2 stringifies them).
    """
    if isinstance(value, float) and value == value and value not in (float("inf"), -float("inf")):
        if value.is_integer():
            return str(int(value))
        text = repr(value)
        if "e" in text or "E" in text:
            return format(Decimal(text), "f")
        return text
    return value


def _tojson(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent, default=str)


def load_prompt(name: str, package: str = "sgde.runtime") -> str:
    """Read a prompt template shipped with a package (``<package>/prompts/<name>``).

    The one reader of sgde's own prompt files (runtime, the compiler's teacher prompts and the
    baselines' prompts all live in a ``prompts/`` folder of their package).

    Args:
        name: File name, e.g. ``"json_instruction.j2"``.
        package: The package holding the ``prompts`` folder.

    Returns:
        The template text.
    """
    return resources.files(package).joinpath("prompts").joinpath(name).read_text(encoding="utf-8")


def prompt_environment(
    package: str | None = None, *, trim_blocks: bool = False
) -> jinja2.Environment:
    """A strict jinja2 environment for sgde's own (trusted) prompt templates.

    Unknown variables fail (:class:`jinja2.StrictUndefined`), nothing is HTML-escaped, and
    ``tojson`` / ``tojson_pretty`` emit plain JSON. Plan templates, which may come from a
    teacher, use the sandboxed :class:`PromptRenderer` instead.

    Args:
        package: When given, ``get_template(name)`` reads ``<package>/prompts/<name>``.
        trim_blocks: Drop the newline after a block tag and leading spaces before one.
    """
    loader = None
    if package is not None:
        pkg = package
        loader = jinja2.FunctionLoader(lambda name: load_prompt(name, pkg))
    env = jinja2.Environment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        trim_blocks=trim_blocks,
        lstrip_blocks=trim_blocks,
    )
    env.filters["tojson"] = _tojson
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=1, default=str)
    return env


class PromptRenderer:
    """Renders jinja2 templates safely, caching compiled templates per instance."""

    def __init__(self) -> None:
        self._env = jinja2.sandbox.SandboxedEnvironment(
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=format_value,
        )
        self._env.filters["tojson"] = _tojson
        self._cache: dict[str, jinja2.Template] = {}

    def _compile(self, source: str, *, node_id: str | None, field: str) -> jinja2.Template:
        template = self._cache.get(source)
        if template is not None:
            return template
        try:
            template = self._env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise ExecutionError(
                f"{field} template has a syntax error on line {exc.lineno}: {exc.message}",
                node_id=node_id,
                hint="fix the template, then check with `sgde validate PLAN`",
            ) from exc
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.pop(next(iter(self._cache)))
        self._cache[source] = template
        return template

    def render(
        self,
        source: str,
        variables: Mapping[str, Any],
        *,
        node_id: str | None = None,
        field: str = "prompt",
    ) -> str:
        """Render ``source`` with ``variables``.

        Args:
            source: jinja2 template text.
            variables: Values for the template's variables.
            node_id: Node id for error messages.
            field: Which template this is (``"prompt"``, ``"system"``), for error messages.

        Returns:
            The rendered text.

        Raises:
            ExecutionError: on a syntax error, an undefined variable or a sandbox violation.
        """
        if "{" not in source:
            return source
        template = self._compile(source, node_id=node_id, field=field)
        try:
            return template.render(dict(variables))
        except jinja2.UndefinedError as exc:
            raise ExecutionError(
                f"{field} template uses an undefined variable: {exc.message}; "
                f"available: {', '.join(sorted(variables)) or '(none)'}",
                node_id=node_id,
                hint="add the variable to the node's inputs or remove it from the template",
            ) from exc
        except jinja2.exceptions.SecurityError as exc:
            raise ExecutionError(
                f"{field} template was refused by the template sandbox: {exc}",
                node_id=node_id,
            ) from exc
        except (jinja2.TemplateError, TypeError, ValueError, ArithmeticError) as exc:
            raise ExecutionError(
                f"{field} template failed to render: {type(exc).__name__}: {exc}",
                node_id=node_id,
            ) from exc
