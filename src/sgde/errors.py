"""The single exception tree of sgde.

Every error sgde raises on purpose derives from :class:`SgdeError`. Each carries a
message that says what went wrong and, in ``hint``, what to do next. Errors are split
into *misuse* (the caller gave something wrong: fix the input) and *runtime failures*
(something failed while working: maybe retry)::

    SgdeError
    ├── UsageError                 misuse: bad arguments, settings, names
    │   ├── ModelNotFoundError     a "provider:model" name that does not resolve
    │   ├── TaskSpecError          a task's fields, types or metric reference are invalid
    │   └── DataError              a dataset file/row that is invalid (file, line)
    │       └── TaskDataError      a row that does not fit the task (row, field)
    ├── PlanError                  a plan that does not load or validate (problems list)
    ├── ExecutionError             a node failed while a plan ran (node_id)
    │   ├── OutputParseError       model output that does not parse against the contract
    │   └── NodeTimeoutError       a node ran past its timeout
    ├── SandboxError               untrusted code refused or contained (rule)
    ├── BackendError               a model backend failed (provider, status, retryable)
    │   └── CircuitOpenError       its endpoint is down: calls fail at once (retry_after_s)
    ├── BudgetExceeded             a call would overspend the token/USD budget
    ├── CompileError               the SGDe compiler could not proceed
    └── TaskMetricError            a metric raised or returned an invalid score (metric, row)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "BackendError",
    "BudgetExceeded",
    "CircuitOpenError",
    "CompileError",
    "DataError",
    "ExecutionError",
    "ModelNotFoundError",
    "NodeTimeoutError",
    "OutputParseError",
    "PlanError",
    "Problem",
    "SandboxError",
    "SgdeError",
    "TaskDataError",
    "TaskMetricError",
    "TaskSpecError",
    "UsageError",
]


class SgdeError(Exception):
    """Base of every error sgde raises on purpose.

    Args:
        message: What went wrong, in one sentence.
        hint: What the user should do next (optional).
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UsageError(SgdeError):
    """The caller passed something invalid (arguments, settings, names)."""


class ModelNotFoundError(UsageError):
    """A ``provider:model`` name did not resolve; ``suggestions`` lists close matches."""

    def __init__(
        self, message: str, *, suggestions: list[str] | None = None, hint: str | None = None
    ) -> None:
        self.suggestions = list(suggestions or [])
        if hint is None and self.suggestions:
            hint = "did you mean " + ", ".join(repr(s) for s in self.suggestions) + "?"
        super().__init__(message, hint=hint)


class DataError(UsageError):
    """A data file or row is invalid. ``path`` and ``line`` (1-based) say where."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message, hint=hint)


@dataclass(frozen=True)
class Problem:
    """One validation problem in a plan.

    Attributes:
        message: What is wrong.
        node_id: The node concerned, if any.
        field: The field concerned (e.g. ``"prompt"``, ``"inputs.eggs"``), if any.
        line: 1-based line in the plan file, if known.
    """

    message: str
    node_id: str | None = None
    field: str | None = None
    line: int | None = None

    def format(self, path: str | None = None) -> str:
        """Render as one line: ``path:line: node 'id' field 'f': message``."""
        loc = path or ""
        if self.line is not None:
            loc = f"{loc}:{self.line}" if loc else f"line {self.line}"
        where: list[str] = []
        if self.node_id is not None:
            where.append(f"node '{self.node_id}'")
        if self.field is not None:
            where.append(f"field '{self.field}'")
        head = f"{loc}: " if loc else ""
        return f"{head}{' '.join(where)}: {self.message}" if where else f"{head}{self.message}"


class PlanError(SgdeError):
    """A plan failed to load or validate. ``problems`` lists every problem found."""

    def __init__(
        self,
        message: str,
        *,
        problems: list[Problem] | None = None,
        path: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.problems = list(problems or [])
        self.path = path
        if hint is None:
            hint = "fix the listed fields, then check with `sgde validate PLAN`"
        super().__init__(message, hint=hint)

    def __str__(self) -> str:
        lines = [self.message]
        lines += ["  " + p.format(self.path) for p in self.problems]
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class ExecutionError(SgdeError):
    """A node failed while a plan ran."""

    def __init__(
        self, message: str, *, node_id: str | None = None, hint: str | None = None
    ) -> None:
        self.node_id = node_id
        prefix = f"node '{node_id}': " if node_id else ""
        super().__init__(prefix + message, hint=hint)


class OutputParseError(ExecutionError):
    """Model output could not be parsed against the node's output contract."""

    def __init__(
        self, message: str, *, raw: str = "", node_id: str | None = None, hint: str | None = None
    ) -> None:
        self.raw = raw
        super().__init__(message, node_id=node_id, hint=hint)


class NodeTimeoutError(ExecutionError):
    """A node ran past its timeout."""


class SandboxError(SgdeError):
    """Untrusted code was refused by the policy or contained at run time.

    ``rule`` names the rule broken (e.g. ``"import-not-allowed"``, ``"timeout"``,
    ``"memory-limit"``); ``line`` is the 1-based source line when known.
    """

    def __init__(
        self,
        message: str,
        *,
        rule: str,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.rule = rule
        self.line = line
        where = f" (line {line})" if line is not None else ""
        super().__init__(f"[{rule}]{where} {message}", hint=hint)


class BackendError(SgdeError):
    """A model backend call failed.

    Attributes:
        provider: e.g. ``"openai-compatible"``.
        status: HTTP status if any.
        retryable: whether retrying may help.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int | None = None,
        retryable: bool = False,
        hint: str | None = None,
    ) -> None:
        self.provider = provider
        self.status = status
        self.retryable = retryable
        st = f" (HTTP {status})" if status is not None else ""
        super().__init__(f"{provider}{st}: {message}", hint=hint)


class CircuitOpenError(BackendError):
    """An endpoint failed repeatedly, so its circuit breaker refuses calls for a while.

    Raised at once, without sending a request (``retryable`` is False: retrying now cannot
    help). See :mod:`sgde.models.breaker`.

    Attributes:
        endpoint: The endpoint (base URL) the breaker guards.
        retry_after_s: Seconds until the breaker lets a probe call through.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        endpoint: str,
        retry_after_s: float,
        hint: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.retry_after_s = retry_after_s
        super().__init__(message, provider=provider, retryable=False, hint=hint)


class BudgetExceeded(SgdeError):
    """A call would overspend the budget; raised *before* the call is made."""

    def __init__(
        self, message: str, *, spent: dict[str, Any] | None = None, hint: str | None = None
    ) -> None:
        self.spent = dict(spent or {})
        super().__init__(message, hint=hint or "raise --budget-tokens/--budget-usd or --resume")


class CompileError(SgdeError):
    """The SGDe compiler could not proceed (e.g. no valid starting plan)."""


class TaskSpecError(UsageError):
    """A task description is invalid: a field name, a type spelling (``list[integer]``), a
    ``--input``/``--output`` option or a ``--metric module:function`` reference."""


class TaskDataError(DataError):
    """A row does not fit the task: a field is missing, null or of the wrong type.

    ``where`` names the row (``"rows.jsonl:3"``, 1-based) and ``field`` the field; ``path``
    and ``line`` are filled in when ``where`` has the form ``path:line``.
    """

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.where = where
        self.field = field
        parts = [p for p in (where, f"field '{field}'" if field is not None else None) if p]
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message, hint=hint)
        head, _, tail = (where or "").rpartition(":")
        if head and tail.isdigit():
            self.path, self.line = head, int(tail)


class TaskMetricError(SgdeError):
    """A metric failed on a row: it raised, or returned something that is not a score.

    ``metric`` names the metric (``"module:function"``) and ``where`` the row.
    """

    def __init__(
        self,
        message: str,
        *,
        metric: str | None = None,
        where: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.metric = metric
        self.where = where
        super().__init__(
            message,
            hint=hint
            or "a metric is called as metric(row, outputs) and must return a float in [0, 1], "
            "a bool, a Score or (float, feedback)",
        )
