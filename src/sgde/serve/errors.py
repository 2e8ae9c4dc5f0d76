"""HTTP errors of the plan server: one JSON shape for every failure.

Every error answers ``{"error": {"code", "message", "field"?, "node"?, "version"?}}`` with a
status that says whose fault it is: 4xx for the request (the ``field`` names what is wrong),
502/504 for a model backend that failed or timed out (the ``node`` names where), 503 while
the server is not ready or stopping, 429 when the queue is full (``Retry-After`` says when to
come back).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError"]


class ApiError(Exception):
    """A request that ends in an HTTP error.

    Args:
        status: HTTP status.
        code: Stable machine-readable code (``invalid_input``, ``unknown_plan``, ...).
        message: What is wrong and what to do, in one sentence.
        field: The request field concerned (``inputs.question``), if any.
        node: The plan node concerned, if any.
        headers: Extra response headers (``Retry-After``).
        extra: Further JSON-ready details.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        node: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.node = node
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})

    def body(self) -> dict[str, Any]:
        """The JSON body's ``error`` object."""
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            out["field"] = self.field
        if self.node is not None:
            out["node"] = self.node
        out.update(self.extra)
        return out
