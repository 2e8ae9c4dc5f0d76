"""jinja2 prompt templates: which variables a template reads, and its syntax errors."""

from __future__ import annotations

from dataclasses import dataclass

import jinja2
import jinja2.meta

from sgde.errors import PlanError, Problem

__all__ = ["TemplateCheck", "check_template", "template_variables"]


@dataclass(frozen=True)
class TemplateCheck:
    """Result of parsing one template.

    Attributes:
        variables: Undeclared variables the template reads (jinja2 globals excluded).
        error: The syntax error message, or ``None`` when the template parses.
        error_line: 1-based line of the syntax error inside the template.
    """

    variables: frozenset[str]
    error: str | None = None
    error_line: int | None = None


def check_template(template: str) -> TemplateCheck:
    """Parse ``template`` with jinja2 and report its variables or its syntax error."""
    env = jinja2.Environment(autoescape=False)
    try:
        ast = env.parse(template)
        env.compile(ast)  # also catches unknown filters and tests
    except jinja2.TemplateSyntaxError as exc:
        return TemplateCheck(frozenset(), f"template syntax error: {exc.message}", exc.lineno)
    except (RecursionError, MemoryError):  # jinja2 parses and compiles recursively
        return TemplateCheck(frozenset(), "template syntax error: expressions nested too deeply")
    names = jinja2.meta.find_undeclared_variables(ast)
    return TemplateCheck(frozenset(n for n in names if n not in env.globals))


def template_variables(template: str) -> set[str]:
    """Return the variables a jinja2 template reads (loop variables and globals excluded).

    Args:
        template: jinja2 source, e.g. ``"Problem: {{ question }}"``.

    Returns:
        The undeclared variable names, e.g. ``{"question"}``.

    Raises:
        PlanError: when the template has a syntax error (the problem's ``line`` is the
            line inside the template).
    """
    result = check_template(template)
    if result.error is not None:
        raise PlanError(
            "template does not parse",
            problems=[Problem(result.error, line=result.error_line)],
            hint="fix the jinja2 syntax ({{ name }}, {% if %}…{% endif %})",
        )
    return set(result.variables)
