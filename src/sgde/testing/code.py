"""A fake sandbox for tests: runs trusted code in this process, with the sandbox's contract.

:class:`InProcessCodeRunner` implements :class:`sgde.runtime.calls.CodeRunner` the way
:class:`~sgde.runtime.sandbox.SandboxPool` does — the same policy check first, exceptions as
``runtime-error``, results that must be JSON — but with **no isolation**: the code runs in
the test's own interpreter. Use it only for code you wrote (examples, fixtures), never for
model-written code; it exists so unit tests need no worker processes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sgde.errors import SandboxError
from sgde.runtime.sandbox.policy import check_source
from sgde.runtime.sandbox.pool import policy_error

__all__ = ["InProcessCodeRunner"]


class InProcessCodeRunner:
    """Runs ``entry(**kwargs)`` from trusted code in this process.

    Args:
        errors: Errors to raise, one per call, before any code runs (to test retries of
            transient sandbox failures); calls after them run normally.

    Attributes:
        calls: ``(code, kwargs, entry)`` of every call, in order.
    """

    def __init__(self, errors: list[SandboxError] | None = None) -> None:
        self.errors = list(errors or [])
        self.calls: list[tuple[str, dict[str, Any], str]] = []

    async def call(
        self,
        code: str,
        kwargs: Mapping[str, Any],
        *,
        entry: str = "run",
        timeout_s: float | None = None,
    ) -> Any:
        """Check ``code`` against the sandbox policy, run ``entry(**kwargs)``, return JSON.

        Raises:
            SandboxError: ``policy:<rule>``, ``runtime-error`` (exception type and message)
                or ``not-json``, as the real sandbox would.
        """
        self.calls.append((code, dict(kwargs), entry))
        if self.errors:
            raise self.errors.pop(0)
        violations = check_source(code, entry=entry)
        if violations:
            raise policy_error(violations)
        namespace: dict[str, Any] = {}
        try:
            exec(compile(code, "<sandbox>", "exec"), namespace)  # trusted test code only
            result = namespace[entry](**kwargs)
        except Exception as exc:
            raise SandboxError(f"{type(exc).__name__}: {exc}", rule="runtime-error") from exc
        try:
            return json.loads(json.dumps(result, allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise SandboxError(f"the result is not JSON: {exc}", rule="not-json") from exc

    @property
    def kwargs(self) -> list[dict[str, Any]]:
        """The keyword arguments of every call, in order."""
        return [kwargs for _, kwargs, _ in self.calls]
