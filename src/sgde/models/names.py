"""``provider:model`` names: parsing, the list of known names, "did you mean" suggestions.

Providers:

- ``local:<registered name>`` or ``local:/path/to/file.gguf`` — embedded llama.cpp
- ``openai:<model>`` — OpenAI
- ``openai-compatible:<model>`` — any OpenAI-compatible server; base URL from
  ``--base-url`` / settings / ``$SGDE_OPENAI_BASE_URL`` / ``$OPENAI_BASE_URL``, or inline as
  ``openai-compatible:<model>@http://host:port/v1``
- ``ollama:<model>`` — Ollama's OpenAI-compatible API (``http://localhost:11434/v1``)
- ``anthropic:<model>`` — Anthropic
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from sgde.errors import ModelNotFoundError
from sgde.models.local.registry import LOCAL_MODELS, get_local_model, lookup_local_model

__all__ = ["PROVIDERS", "ModelName", "known_model_names", "parse_model_name"]

PROVIDERS: tuple[str, ...] = ("local", "openai", "openai-compatible", "ollama", "anthropic")

_ACCEPTED_FORMS = (
    "local:NAME (a registered model, see `sgde models list`)",
    "local:/path/model.gguf",
    "openai:MODEL",
    "openai-compatible:MODEL (with --base-url URL)",
    "ollama:MODEL",
    "anthropic:MODEL",
)

_EXAMPLE_REMOTE = (
    "openai:gpt-4o-mini",
    "openai:gpt-4.1-mini",
    "openai:gpt-5-mini",
    "anthropic:claude-haiku-4-5",
    "anthropic:claude-sonnet-4-5",
    "ollama:qwen2.5-coder:1.5b",
)


@dataclass(frozen=True)
class ModelName:
    """A parsed model name.

    Attributes:
        provider: One of :data:`PROVIDERS`.
        model: Everything after the first colon (model id, registry name or path).
        base_url: Inline base URL (``openai-compatible:<model>@<url>``), if given.
    """

    provider: str
    model: str
    base_url: str | None = None

    @property
    def full(self) -> str:
        """The canonical ``provider:model`` string."""
        suffix = f"@{self.base_url}" if self.base_url else ""
        return f"{self.provider}:{self.model}{suffix}"

    @property
    def is_local_path(self) -> bool:
        """``local:`` name that points at a file rather than a registry entry."""
        return self.provider == "local" and _looks_like_path(self.model)


def _looks_like_path(text: str) -> bool:
    return (
        text.lower().endswith(".gguf") or "/" in text or "\\" in text or text.startswith(("~", "."))
    )


def known_model_names() -> list[str]:
    """Registered local models plus common remote names (for help texts and suggestions)."""
    return [m.full_name for m in LOCAL_MODELS] + list(_EXAMPLE_REMOTE)


def _suggest(name: str) -> list[str]:
    candidates = known_model_names()
    return difflib.get_close_matches(name, candidates, n=3, cutoff=0.6)


def _provider_hint(suggestions: list[str]) -> str:
    """The hint of a name whose provider is missing or unknown: did-you-mean plus the forms."""
    forms = "accepted forms: " + ", ".join(_ACCEPTED_FORMS)
    if not suggestions:
        return forms
    return "did you mean " + ", ".join(repr(s) for s in suggestions) + f"? {forms}"


def parse_model_name(name: str) -> ModelName:
    """Parse and check ``provider:model``.

    Raises:
        ModelNotFoundError: Unknown provider, empty model, or unknown local model; with
            close matches as suggestions.
    """
    text = name.strip()
    provider, colon, model = text.partition(":")
    provider = provider.lower()
    if not colon:
        local = get_local_model(text)
        suggestions = [local.full_name] if local else _suggest(f"local:{text}") or _suggest(text)
        raise ModelNotFoundError(
            f"model name {name!r} lacks a provider; write it as provider:model",
            suggestions=suggestions,
            hint=_provider_hint(suggestions),
        )
    if provider not in PROVIDERS:
        close = difflib.get_close_matches(provider, PROVIDERS, n=2, cutoff=0.5)
        suggestions = [f"{p}:{model}" for p in close] or _suggest(text)
        raise ModelNotFoundError(
            f"unknown model provider {provider!r} in {name!r} (providers: {', '.join(PROVIDERS)})",
            suggestions=suggestions,
            hint=_provider_hint(suggestions),
        )
    if not model.strip():
        raise ModelNotFoundError(
            f"model name {name!r} has no model after {provider + ':'!r}",
            suggestions=[n for n in known_model_names() if n.startswith(provider + ":")][:3],
        )
    base_url: str | None = None
    if provider == "openai-compatible":
        head, at, url = model.rpartition("@")
        if at and url.startswith(("http://", "https://")) and head:
            model, base_url = head, url.rstrip("/")
    parsed = ModelName(provider, model, base_url)
    if provider == "local" and not parsed.is_local_path:
        lookup_local_model(parsed.full)  # raises for an unregistered name, with suggestions
    return parsed
