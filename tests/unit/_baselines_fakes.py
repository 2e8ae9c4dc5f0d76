"""Shared fakes for the baselines/optimizers unit tests (a sandbox that never execs)."""

from __future__ import annotations

from typing import Any

from sgde.errors import SandboxError
from sgde.evaluation.baselines import final_number
from sgde.evaluation.baselines.plans import final_number_source

ROWS = [
    {
        "id": "r1",
        "question": "Ann has 1234567 apples and buys 2 more. How many?",
        "answer": 1234569,
    },
    {"id": "r2", "question": "A box holds 12 eggs. How many eggs in 250 boxes?", "answer": 3000},
    {"id": "r3", "question": "Tom owes $7.5 and pays $10. What change?", "answer": 2.5},
]


class FakeSandbox:
    """A CodeRunner for unit tests.

    The answer-extraction node's code (sgde's own, reviewed) is answered by calling
    :func:`final_number.run` directly; any other program is answered from ``programs``
    (marker substring -> result or exception). Nothing is ever exec'd.
    """

    def __init__(self, programs: dict[str, Any] | None = None) -> None:
        self.programs = programs or {}
        self.calls: list[tuple[str, dict[str, Any], str]] = []

    async def call(
        self,
        code: str,
        kwargs: dict[str, Any],
        *,
        entry: str = "run",
        timeout_s: float | None = None,
    ) -> Any:
        self.calls.append((code, dict(kwargs), entry))
        if code == final_number_source() and entry == "run":
            return final_number.run(**kwargs)
        for marker, result in self.programs.items():
            if marker in code:
                if isinstance(result, BaseException):
                    raise result
                return result
        raise SandboxError(f"no scripted result for entry {entry!r}", rule="runtime-error")

    @property
    def program_calls(self) -> list[tuple[str, dict[str, Any], str]]:
        """Calls other than the extraction node."""
        return [c for c in self.calls if c[0] != final_number_source()]
