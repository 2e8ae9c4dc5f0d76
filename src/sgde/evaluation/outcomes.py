""" "Wrong answer" versus "could not run": why a row has no verdict.

A row *ran* when the plan (or method) got to answer it, right or wrong: a parse failure, a
node timeout or teacher code that breaks a sandbox rule are the plan's failures and count as
wrong answers. A row *could not run* when something outside the plan failed: a model
endpoint (:class:`~sgde.errors.BackendError`, an open circuit breaker), the sandbox itself
(no isolation, workers that crash or cannot start) or the budget. Such rows are not part of
the accuracy; they are counted beside it and rerun by ``--resume``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from sgde.errors import BackendError, BudgetExceeded, SandboxError
from sgde.runtime.trace import RunTrace

__all__ = [
    "ERROR_KINDS",
    "ErrorKind",
    "exception_error_kind",
    "run_error_kind",
    "trace_error_kind",
]

ErrorKind = Literal["backend", "sandbox", "budget"]
ERROR_KINDS: tuple[ErrorKind, ...] = ("backend", "sandbox", "budget")

_BACKEND_TYPES = frozenset({"BackendError", "CircuitOpenError"})
_SANDBOX_INFRA_RULES = frozenset({"isolation-unavailable", "worker-crashed"})
"""Sandbox rules that say the sandbox failed, not the code it ran."""


def exception_error_kind(exc: BaseException) -> ErrorKind | None:
    """The kind of ``exc`` if it means "could not run", else ``None``."""
    if isinstance(exc, BudgetExceeded):
        return "budget"
    if isinstance(exc, BackendError):
        return "backend"
    if isinstance(exc, SandboxError) and exc.rule in _SANDBOX_INFRA_RULES:
        return "sandbox"
    return None


def _info_kind(info: Mapping[str, Any] | None) -> ErrorKind | None:
    """The kind of a trace's :func:`~sgde.runtime.trace.error_info` record."""
    if not info:
        return None
    kind = info.get("type")
    if kind in _BACKEND_TYPES:
        return "backend"
    if kind == "BudgetExceeded":
        return "budget"
    if kind == "SandboxError" and info.get("rule") in _SANDBOX_INFRA_RULES:
        return "sandbox"
    return None


def _nodes_kind(nodes: Iterable[tuple[Any, Any, Iterable[Any]]]) -> ErrorKind | None:
    """First "could not run" kind over ``(status, error, sample errors)`` of each node.

    A failed consensus node counts when one of its samples failed that way: the vote
    was decided without them (its own error only says "no valid sample").
    """
    for status, error, sample_errors in nodes:
        if status != "error":
            continue
        kind = _info_kind(error)
        if kind is not None:
            return kind
        for sample_error in sample_errors:
            kind = _info_kind(sample_error)
            if kind is not None:
                return kind
    return None


def run_error_kind(trace: RunTrace) -> ErrorKind | None:
    """Why a run could not run (``None``: it ran, or failed by the plan's own fault)."""
    if trace.ok:
        return None
    return _nodes_kind((n.status, n.error, [s.error for s in n.samples]) for n in trace.nodes)


def trace_error_kind(trace: Mapping[str, Any]) -> ErrorKind | None:
    """:func:`run_error_kind` of a trace in its JSON form (``RunTrace.to_dict()``)."""
    if trace.get("ok", False):
        return None
    nodes = trace.get("nodes") or []
    return _nodes_kind(
        (
            n.get("status"),
            n.get("error"),
            [s.get("error") for s in n.get("samples") or []],
        )
        for n in nodes
        if isinstance(n, Mapping)
    )
