"""Anthropic's Messages API through the official ``anthropic`` SDK (optional extra).

Structured output uses one forced tool whose ``input_schema`` is the JSON schema: the
model must "call" it, and the tool input is the JSON object returned as text. System
messages go into the separate ``system`` field. The SDK's own retries are off; retries
and error mapping are shared with the OpenAI backend (:mod:`sgde.models.retry`).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sgde.errors import UsageError
from sgde.models.breaker import CircuitBreaker
from sgde.models.concurrency import LoopSemaphore
from sgde.models.retry import Failure, RetryPolicy, call_with_retries, classify_sdk_error
from sgde.runtime.backend import Capabilities, ChatRequest, ChatResponse, Usage

__all__ = ["TOOL_NAME", "AnthropicBackend", "import_anthropic"]

PROVIDER = "anthropic"
TOOL_NAME = "respond"
"""Name of the forced tool that carries structured output."""


def import_anthropic() -> Any:
    """Import the ``anthropic`` SDK; a clear error when it is not installed."""
    try:
        import anthropic
    except ImportError:
        raise UsageError(
            "anthropic: models need the anthropic SDK, which is not installed",
            hint='pip install "sgde[anthropic]"',
        ) from None
    return anthropic


class AnthropicBackend:
    """Chat with Claude models.

    Args:
        name: Full ``anthropic:<model>`` name.
        model: Model id (e.g. ``"claude-sonnet-4-5"``).
        client: An ``anthropic.AsyncAnthropic`` client (create it with ``max_retries=0``).
        policy: Retry policy.
        max_concurrency: Concurrent requests at most.
        owns_client: Close ``client`` in :meth:`aclose`.
        sleep: Awaitable sleep used between retries (tests inject a fake).
        rng: Source of backoff jitter.
        breaker: Circuit breaker of the endpoint, shared with every backend that calls it
            (see :mod:`sgde.models.breaker`); ``None`` for none.
    """

    def __init__(
        self,
        name: str,
        *,
        model: str,
        client: Any,
        policy: RetryPolicy | None = None,
        max_concurrency: int = 4,
        owns_client: bool = True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._name = name
        self.model = model
        self._client = client
        self._policy = policy or RetryPolicy()
        self._limit = LoopSemaphore(max_concurrency)
        self._owns_client = owns_client
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.breaker = breaker
        self._sampling: frozenset[str] | None = None

    @property
    def name(self) -> str:
        """``anthropic:<model>``."""
        return self._name

    @property
    def endpoint(self) -> str | None:
        """Base URL of the server (part of the request-cache key), if the client has one."""
        base_url = getattr(self._client, "base_url", None)
        return str(base_url).rstrip("/") if base_url else None

    @property
    def capabilities(self) -> Capabilities:
        """JSON schema through a forced tool; no seed."""
        return Capabilities(json_schema=True, json_object=True, seed=False)

    def request_kwargs(self, request: ChatRequest) -> dict[str, Any]:
        """Arguments of ``messages.create`` for ``request``."""
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        messages: list[dict[str, str]] = []
        for m in request.messages:
            if m.role == "system":
                continue
            if messages and messages[-1]["role"] == m.role:
                messages[-1]["content"] += "\n\n" + m.content  # the API needs alternation
            else:
                messages.append({"role": m.role, "content": m.content})
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "max_tokens": request.max_tokens,
        }
        sampling = self._sampling_params()
        if "temperature" in sampling:
            kwargs["temperature"] = request.temperature
        if request.top_p is not None and "top_p" in sampling:
            kwargs["top_p"] = request.top_p
        if system:
            kwargs["system"] = system
        if request.stop:
            kwargs["stop_sequences"] = list(request.stop)
        if request.json_schema is not None:
            kwargs["tools"] = [
                {
                    "name": TOOL_NAME,
                    "description": "Give the response as structured data.",
                    "input_schema": dict(request.json_schema),
                }
            ]
            kwargs["tool_choice"] = {"type": "tool", "name": TOOL_NAME}
        return kwargs

    def _sampling_params(self) -> frozenset[str]:
        """Sampling parameters the installed SDK's ``messages.create`` accepts.

        Recent ``anthropic`` releases dropped ``temperature``/``top_p`` from the signature
        (the API applies its own sampling); older ones accept them.
        """
        if self._sampling is None:
            try:
                params = inspect.signature(self._client.messages.create).parameters
            except (TypeError, ValueError, AttributeError):
                self._sampling = frozenset({"temperature", "top_p"})
            else:
                accepts_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
                names = {"temperature", "top_p"}
                self._sampling = frozenset(names if accepts_any else names & set(params))
        return self._sampling

    def _classify(self, exc: Exception) -> Failure | None:
        anthropic = import_anthropic()
        return classify_sdk_error(
            exc, anthropic, provider=PROVIDER, where=self.model, key_env="ANTHROPIC_API_KEY"
        )

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """Run one call with retries.

        Raises:
            BackendError: With provider, HTTP status and whether retrying may help.
        """
        kwargs = self.request_kwargs(request)
        start = time.perf_counter()
        async with self._limit.acquire():
            message = await call_with_retries(
                lambda: self._client.messages.create(**kwargs),
                classify=self._classify,
                policy=self._policy,
                sleep=self._sleep,
                rng=self._rng,
                breaker=self.breaker,
            )
        latency = time.perf_counter() - start
        text = _text_of(message, structured=request.json_schema is not None)
        usage = getattr(message, "usage", None)
        return ChatResponse(
            text=text,
            usage=Usage(
                prompt_tokens=int(getattr(usage, "input_tokens", 0) or 0),
                completion_tokens=int(getattr(usage, "output_tokens", 0) or 0),
                calls=1,
            ),
            model=self._name,
            latency_s=latency,
            finish_reason=getattr(message, "stop_reason", None),
        )

    async def aclose(self) -> None:
        """Close the HTTP client (when this backend created it)."""
        if self._owns_client:
            await self._client.close()


def _text_of(message: Any, *, structured: bool) -> str:
    """The tool input as JSON for structured calls, else the concatenated text blocks."""
    blocks = list(getattr(message, "content", None) or [])
    if structured:
        for block in blocks:
            if (
                getattr(block, "type", None) == "tool_use"
                and getattr(block, "name", "") == TOOL_NAME
            ):
                return json.dumps(getattr(block, "input", {}), ensure_ascii=False)
    return "".join(getattr(b, "text", "") for b in blocks if getattr(b, "type", None) == "text")
