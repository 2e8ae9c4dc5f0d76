"""OpenAI and OpenAI-compatible chat endpoints through the official ``openai`` SDK.

One backend serves OpenAI, vLLM, Ollama, llama.cpp's server, LM Studio, OpenRouter, ...:
what differs is the endpoint and its *structured-output profile*:

- ``json_schema``: ``response_format={"type": "json_schema", "json_schema": {...}}``
  (strict when the schema allows it, see :func:`strict_schema`)
- ``json_object_schema``: ``{"type": "json_object", "schema": ...}`` (llama.cpp's server; it
  answers HTTP 500 to the ``json_schema`` form)
- ``json_object``: ``{"type": "json_object"}`` plus the schema in the prompt
- ``none``: no ``response_format``; the caller prompts for JSON and repairs it

In ``auto`` mode the backend starts with ``json_schema`` and, until one call has succeeded,
steps down the list when the endpoint rejects a form; it then adds the schema to the prompt
itself whenever the chosen form does not carry it. The SDK's own retries are off
(``max_retries=0``): :mod:`sgde.models.retry` retries with backoff and ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sgde.models.breaker import CircuitBreaker
from sgde.models.concurrency import LoopSemaphore
from sgde.models.request import (
    estimate_prompt_tokens,
    estimate_tokens,
    sample_seed,
    with_json_instruction,
)
from sgde.models.retry import Failure, RetryPolicy, call_with_retries, classify_sdk_error
from sgde.models.settings import StructuredOutputMode
from sgde.runtime.backend import Capabilities, ChatRequest, ChatResponse, Message, Usage

__all__ = ["OpenAIBackend", "classify_openai_error"]

_FALLBACK: tuple[StructuredOutputMode, ...] = (
    "json_schema",
    "json_object_schema",
    "json_object",
    "none",
)
"""Forms tried in ``auto`` mode, in order."""

_DOWNGRADE_STATUS = frozenset({400, 415, 422, 500, 501})
"""Statuses with which endpoints reject an unsupported ``response_format``."""


_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def _fixed_sampling(provider: str, model: str) -> bool:
    """OpenAI reasoning models accept only their default temperature/top_p."""
    return provider == "openai" and model.startswith(_REASONING_PREFIXES)


def strict_schema(schema: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """``schema`` in the form OpenAI's strict structured outputs need, and whether it qualifies.

    Objects get ``additionalProperties: false`` where unset (extra output fields are never
    wanted). Strict mode also needs every property required; a schema with optional
    properties is sent non-strict (best effort) rather than changing its meaning.
    """
    qualifies = True

    def visit(node: Any) -> Any:
        nonlocal qualifies
        if not isinstance(node, Mapping):
            return node
        out = dict(node)
        for key in ("properties", "$defs", "definitions", "patternProperties"):
            if isinstance(out.get(key), Mapping):
                out[key] = {name: visit(sub) for name, sub in out[key].items()}
        for key in ("items", "not", "additionalProperties"):
            if isinstance(out.get(key), Mapping):
                out[key] = visit(out[key])
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            if isinstance(out.get(key), list):
                out[key] = [visit(sub) for sub in out[key]]
        if out.get("type") == "object" or "properties" in out:
            out.setdefault("additionalProperties", False)
            if out["additionalProperties"] is not False:
                qualifies = False
            if set(out.get("properties") or {}) - set(out.get("required") or ()):
                qualifies = False
        return out

    converted: dict[str, Any] = visit(schema)
    return converted, qualifies


def _schema_name(schema: Mapping[str, Any]) -> str:
    title = str(schema.get("title") or "output")
    return re.sub(r"[^A-Za-z0-9_-]", "_", title)[:64] or "output"


def classify_openai_error(exc: Exception, *, provider: str, where: str) -> Failure | None:
    """Map an ``openai`` SDK (or body-parsing) exception to a :class:`Failure`.

    Args:
        exc: The exception raised by the SDK call.
        provider: Provider name for the error (``"openai"``, ``"ollama"``, ...).
        where: ``model at base_url``, used in messages.

    Returns:
        The classified failure, or ``None`` for exceptions that are not backend failures.
    """
    import openai

    return classify_sdk_error(exc, openai, provider=provider, where=where, key_env="OPENAI_API_KEY")


class _EmptyResponse(Exception):
    """The endpoint answered without any choice (retryable)."""


class OpenAIBackend:
    """Chat completions against an OpenAI(-compatible) endpoint.

    Args:
        name: Full ``provider:model`` name.
        provider: ``"openai"``, ``"openai-compatible"`` or ``"ollama"``.
        model: Model id sent to the endpoint.
        client: An ``openai.AsyncOpenAI`` client (create it with ``max_retries=0``).
        structured_output: Structured-output profile (see module docstring).
        extra_body: Extra JSON fields sent with every request (e.g. ``repeat_penalty``).
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
        provider: str,
        model: str,
        client: Any,
        structured_output: StructuredOutputMode = "auto",
        extra_body: Mapping[str, Any] | None = None,
        policy: RetryPolicy | None = None,
        max_concurrency: int = 4,
        owns_client: bool = True,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self._name = name
        self.provider = provider
        self.model = model
        self._client = client
        self._configured = structured_output
        self._mode: StructuredOutputMode = (
            _FALLBACK[0] if structured_output == "auto" else structured_output
        )
        self._mode_confirmed = structured_output != "auto"
        self._extra_body = dict(extra_body or {})
        self._policy = policy or RetryPolicy()
        self._limit = LoopSemaphore(max_concurrency)
        self._owns_client = owns_client
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.breaker = breaker
        base_url = getattr(client, "base_url", "")
        self._where = f"{model} at {str(base_url).rstrip('/')}" if base_url else model

    @property
    def name(self) -> str:
        """``provider:model`` name."""
        return self._name

    @property
    def endpoint(self) -> str | None:
        """Base URL of the server (part of the request-cache key), if the client has one."""
        base_url = getattr(self._client, "base_url", None)
        return str(base_url).rstrip("/") if base_url else None

    @property
    def structured_output(self) -> StructuredOutputMode:
        """The structured-output form currently used."""
        return self._mode

    @property
    def capabilities(self) -> Capabilities:
        """Native JSON-schema output in ``auto``/``json_schema``/``json_object_schema`` modes."""
        schema = self._configured in ("auto", "json_schema", "json_object_schema")
        obj = self._configured != "none"
        return Capabilities(json_schema=schema, json_object=obj, seed=True)

    def request_kwargs(self, request: ChatRequest, mode: StructuredOutputMode) -> dict[str, Any]:
        """Arguments of ``chat.completions.create`` for ``request`` in ``mode``."""
        messages: list[Message] | tuple[Message, ...] = request.messages
        schema = request.json_schema
        if schema is not None and self._configured == "auto" and mode in ("json_object", "none"):
            messages = with_json_instruction(request.messages, schema)
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [m.to_dict() for m in messages],
            "seed": sample_seed(request.seed, request.sample_index),
        }
        if self.provider == "openai":
            # OpenAI deprecated max_tokens; its reasoning models reject it and any sampling
            # parameter other than the defaults.
            kwargs["max_completion_tokens"] = request.max_tokens
        else:
            kwargs["max_tokens"] = request.max_tokens
        if not _fixed_sampling(self.provider, self.model):
            kwargs["temperature"] = request.temperature
            if request.top_p is not None:
                kwargs["top_p"] = request.top_p
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if schema is not None:
            if mode == "json_schema":
                strict_form, strict = strict_schema(schema)
                kwargs["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {
                        "name": _schema_name(schema),
                        "schema": strict_form,
                        "strict": strict,
                    },
                }
            elif mode == "json_object_schema":
                kwargs["response_format"] = {"type": "json_object", "schema": dict(schema)}
            elif mode == "json_object":
                kwargs["response_format"] = {"type": "json_object"}
        if self._extra_body:
            kwargs["extra_body"] = dict(self._extra_body)
        return kwargs

    def _classify(self, exc: Exception) -> Failure | None:
        if isinstance(exc, _EmptyResponse):
            return Failure(self.provider, f"{self._where}: response has no choices", retryable=True)
        return classify_openai_error(exc, provider=self.provider, where=self._where)

    async def _attempt(self, request: ChatRequest) -> Any:
        while True:
            mode = self._mode
            try:
                completion = await self._client.chat.completions.create(
                    **self.request_kwargs(request, mode)
                )
            except Exception as exc:
                if self._should_downgrade(exc, request, mode):
                    continue
                raise
            if not getattr(completion, "choices", None):
                raise _EmptyResponse()
            if request.json_schema is not None:
                self._mode_confirmed = True
            return completion

    def _should_downgrade(self, exc: Exception, request: ChatRequest, mode: str) -> bool:
        """Whether to resend at once with another structured-output form.

        True when a concurrent call has already moved past ``mode``, or (in ``auto`` mode,
        before any structured call succeeded) when the endpoint rejected ``mode`` and a
        further form remains; the backend then steps down to it.
        """
        import openai

        if (
            request.json_schema is None
            or not isinstance(exc, openai.APIStatusError)
            or exc.status_code not in _DOWNGRADE_STATUS
            or mode not in _FALLBACK
        ):
            return False
        if mode != self._mode:
            return True
        position = _FALLBACK.index(mode)
        if self._mode_confirmed or position + 1 >= len(_FALLBACK):
            return False
        self._mode = _FALLBACK[position + 1]
        return True

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """Run one call with retries.

        Raises:
            BackendError: With provider, HTTP status and whether retrying may help.
        """
        start = time.perf_counter()
        async with self._limit.acquire():
            completion = await call_with_retries(
                lambda: self._attempt(request),
                classify=self._classify,
                policy=self._policy,
                sleep=self._sleep,
                rng=self._rng,
                breaker=self.breaker,
            )
        latency = time.perf_counter() - start
        choice = completion.choices[0]
        message = getattr(choice, "message", None)
        text = (getattr(message, "content", None) or "") if message is not None else ""
        usage, estimated = _usage_of(completion, request, text)
        return ChatResponse(
            text=text,
            usage=usage,
            model=self._name,
            latency_s=latency,
            finish_reason=getattr(choice, "finish_reason", None),
            usage_estimated=estimated,
        )

    async def aclose(self) -> None:
        """Close the HTTP client (when this backend created it)."""
        if self._owns_client:
            await self._client.close()


def _usage_of(completion: Any, request: ChatRequest, text: str) -> tuple[Usage, bool]:
    """Usage reported by the endpoint, or an estimate (flagged) when it sent none."""
    usage = getattr(completion, "usage", None)
    prompt = getattr(usage, "prompt_tokens", None) if usage is not None else None
    completion_tokens = getattr(usage, "completion_tokens", None) if usage is not None else None
    if isinstance(prompt, int) and isinstance(completion_tokens, int):
        return Usage(prompt_tokens=prompt, completion_tokens=completion_tokens, calls=1), False
    return (
        Usage(
            prompt_tokens=estimate_prompt_tokens(request),
            completion_tokens=estimate_tokens(text),
            calls=1,
        ),
        True,
    )
