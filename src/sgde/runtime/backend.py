"""The backend seam: what the executor needs from a model.

Concrete backends (llama.cpp, OpenAI-compatible, Anthropic) live in :mod:`sgde.models`;
fakes for tests live in :mod:`sgde.testing`. Both implement :class:`Backend`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "Backend",
    "Capabilities",
    "ChatRequest",
    "ChatResponse",
    "Message",
    "ModelBindings",
    "Usage",
]

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    """One chat message."""

    role: Role
    content: str

    def to_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class ChatRequest:
    """A single model call.

    Attributes:
        messages: The conversation (system first, if any).
        temperature: Sampling temperature (0 = greedy).
        max_tokens: Completion token limit.
        top_p: Nucleus sampling, if set.
        seed: Sampling seed, if the backend supports it.
        json_schema: When set, the output must be a JSON object valid under this schema.
        sample_index: Index of this sample among repeated samples of the same request
            (consensus fan-out); part of the cache key, so samples differ but reruns repeat.
        stop: Stop sequences.
    """

    messages: tuple[Message, ...]
    temperature: float = 0.0
    max_tokens: int = 256
    top_p: float | None = None
    seed: int | None = None
    json_schema: Mapping[str, Any] | None = None
    sample_index: int = 0
    stop: tuple[str, ...] = ()

    def cache_key_data(self) -> dict[str, Any]:
        """Everything that identifies this request (for caches)."""
        return {
            "messages": [m.to_dict() for m in self.messages],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "top_p": self.top_p,
            "seed": self.seed,
            "json_schema": dict(self.json_schema) if self.json_schema is not None else None,
            "sample_index": self.sample_index,
            "stop": list(self.stop),
        }


@dataclass
class Usage:
    """Token usage (and cost, when a price is known)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.calls + other.calls,
            self.usd + other.usd,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "calls": self.calls,
            "usd": round(self.usd, 6),
        }


@dataclass
class ChatResponse:
    """What a backend returns for one call."""

    text: str
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    latency_s: float = 0.0
    cached: bool = False
    finish_reason: str | None = None
    usage_estimated: bool = False
    """True when the endpoint reported no usage and ``usage`` is sgde's estimate."""


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do natively.

    Attributes:
        json_schema: Output can be constrained to a JSON schema (grammar / structured output).
        json_object: Output can be forced to *some* JSON object (no schema).
        seed: Honours ``seed``.
    """

    json_schema: bool = False
    json_object: bool = False
    seed: bool = False


@runtime_checkable
class Backend(Protocol):
    """A chat model. Implementations must be safe to call concurrently from one event loop."""

    @property
    def name(self) -> str:
        """``provider:model`` name."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """Run one call. Raises :class:`sgde.errors.BackendError` on failure."""
        ...

    async def aclose(self) -> None:
        """Release resources (HTTP clients, loaded models)."""
        ...


ModelBindings = Mapping[str, Backend]
"""Role name (e.g. ``"student"``) -> backend."""
