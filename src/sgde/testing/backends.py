"""Fake model backends for tests and examples: scripted replies and reply functions.

Both implement :class:`sgde.runtime.backend.Backend`, record every request and report
deterministic token usage (whitespace-separated words), so executor behaviour — parsing,
retries, voting, tracing — can be tested without a model.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeAlias

from sgde.errors import BackendError, UsageError
from sgde.runtime.backend import Capabilities, ChatRequest, ChatResponse, Usage

__all__ = ["FunctionBackend", "Reply", "ScriptedBackend"]

Reply: TypeAlias = str | Mapping[str, Any] | BaseException
"""One scripted reply: text, an object (sent as JSON text) or an exception to raise."""

_Fn: TypeAlias = Callable[
    [ChatRequest], str | Mapping[str, Any] | Awaitable[str | Mapping[str, Any]]
]


def _as_text(reply: str | Mapping[str, Any]) -> str:
    if isinstance(reply, str):
        return reply
    if isinstance(reply, Mapping):
        return json.dumps(dict(reply), ensure_ascii=False)
    raise UsageError(
        f"a fake backend reply must be a str or a dict, got {type(reply).__name__}",
        hint="return text or a JSON-ready dict",
    )


def _usage(request: ChatRequest, text: str) -> Usage:
    prompt = sum(len(m.content.split()) for m in request.messages)
    return Usage(prompt_tokens=prompt, completion_tokens=len(text.split()), calls=1)


class _FakeBase:
    """Shared behaviour: name, capabilities, request log, optional delay, closing."""

    def __init__(self, *, name: str, capabilities: Capabilities | None, delay_s: float) -> None:
        self._name = name
        self._capabilities = capabilities or Capabilities()
        self._delay_s = delay_s
        self.requests: list[ChatRequest] = []
        self.closed = False

    @property
    def name(self) -> str:
        """``provider:model`` name of the fake."""
        return self._name

    @property
    def capabilities(self) -> Capabilities:
        """The capabilities this fake claims."""
        return self._capabilities

    @property
    def calls(self) -> int:
        """Number of requests received."""
        return len(self.requests)

    async def _respond(self, request: ChatRequest, text: str) -> ChatResponse:
        if self._delay_s > 0:
            await asyncio.sleep(self._delay_s)
        return ChatResponse(
            text=text,
            usage=_usage(request, text),
            model=self._name,
            latency_s=self._delay_s,
            finish_reason="stop",
        )

    async def aclose(self) -> None:
        """Mark the fake closed (nothing to release)."""
        self.closed = True


class ScriptedBackend(_FakeBase):
    """Replays scripted replies.

    ``responses`` is either

    * a sequence: replies are returned in order, one per call; when they run out, the call
      raises :class:`~sgde.errors.BackendError` saying so;
    * a mapping from a substring to a reply (or a sequence of replies, replayed in order):
      the first key found in the request's last user message (else any message) answers;
      a request that matches no key raises :class:`~sgde.errors.BackendError` quoting it;
    * a callable ``(request) -> reply``.

    A reply is text, a dict (sent as JSON) or an exception instance (raised).

    Args:
        responses: The script.
        name: Backend name reported in traces.
        capabilities: Claimed capabilities (default: none, so the executor parses text).
        delay_s: Simulated latency per call.

    Example:
        >>> backend = ScriptedBackend([{"eggs": 16}, "not json"])
    """

    def __init__(
        self,
        responses: Sequence[Reply]
        | Mapping[str, Reply | Sequence[Reply]]
        | Callable[[ChatRequest], Reply],
        *,
        name: str = "scripted:test",
        capabilities: Capabilities | None = None,
        delay_s: float = 0.0,
    ) -> None:
        super().__init__(name=name, capabilities=capabilities, delay_s=delay_s)
        self._sequence: list[Reply] | None = None
        self._table: dict[str, list[Reply]] | None = None
        self._fn: Callable[[ChatRequest], Reply] | None = None
        self._position = 0
        self._table_positions: dict[str, int] = {}
        if isinstance(responses, Mapping):
            self._table = {
                str(key): (
                    list(value)
                    if isinstance(value, Sequence) and not isinstance(value, str)
                    else [value]
                )
                for key, value in responses.items()
            }
        elif callable(responses):
            self._fn = responses
        elif isinstance(responses, (str, bytes)):
            raise UsageError(
                "ScriptedBackend takes a list of replies, not a single string",
                hint="wrap it: ScriptedBackend([reply])",
            )
        else:
            self._sequence = list(responses)

    @property
    def remaining(self) -> int | None:
        """Replies left in a sequence script (None for mapping/callable scripts)."""
        if self._sequence is None:
            return None
        return len(self._sequence) - self._position

    def _next_reply(self, request: ChatRequest) -> Reply:
        if self._sequence is not None:
            if self._position >= len(self._sequence):
                raise BackendError(
                    f"script exhausted: {len(self._sequence)} replies were scripted and call "
                    f"{self._position + 1} asked for another",
                    provider=self._name,
                    hint="add replies to the ScriptedBackend script",
                )
            reply = self._sequence[self._position]
            self._position += 1
            return reply
        if self._table is not None:
            return self._match(request, self._table)
        assert self._fn is not None
        return self._fn(request)

    def _match(self, request: ChatRequest, table: dict[str, list[Reply]]) -> Reply:
        users = [m.content for m in request.messages if m.role == "user"]
        haystacks = [users[-1]] if users else []
        haystacks.append("\n".join(m.content for m in request.messages))
        for haystack in haystacks:
            for key, replies in table.items():
                if key in haystack:
                    index = self._table_positions.get(key, 0)
                    self._table_positions[key] = index + 1
                    return replies[min(index, len(replies) - 1)]
        prompt = users[-1] if users else ""
        short = prompt if len(prompt) <= 120 else prompt[:117] + "..."
        raise BackendError(
            f"no scripted reply matches the request {short!r}",
            provider=self._name,
            hint="add a key that occurs in the prompt to the ScriptedBackend mapping",
        )

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """Return the next scripted reply (or raise the scripted exception)."""
        self.requests.append(request)
        reply = self._next_reply(request)
        if isinstance(reply, BaseException):
            raise reply
        return await self._respond(request, _as_text(reply))


class FunctionBackend(_FakeBase):
    """Answers each request with ``fn(request)`` (sync or async), as text or a dict.

    Args:
        fn: Computes the reply from the :class:`~sgde.runtime.backend.ChatRequest`.
        name: Backend name reported in traces.
        capabilities: Claimed capabilities.
        delay_s: Simulated latency per call.

    Example:
        >>> backend = FunctionBackend(lambda req: {"eggs": 16})
    """

    def __init__(
        self,
        fn: _Fn,
        *,
        name: str = "function:test",
        capabilities: Capabilities | None = None,
        delay_s: float = 0.0,
    ) -> None:
        super().__init__(name=name, capabilities=capabilities, delay_s=delay_s)
        self._fn = fn

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """Call the function and return its reply."""
        self.requests.append(request)
        reply = self._fn(request)
        if inspect.isawaitable(reply):
            reply = await reply
        return await self._respond(request, _as_text(reply))
