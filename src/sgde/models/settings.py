"""Settings for model backends, caching, prices and budgets.

One :class:`ModelSettings` object configures a :class:`~sgde.models.ModelHub` and every
backend it creates. Defaults suit the offline case (local models, no budget); environment
variables fill in what a user would not want to type on every command line.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "ModelSettings",
    "Price",
    "StructuredOutputMode",
    "default_cache_dir",
    "default_models_dir",
]

StructuredOutputMode = Literal["auto", "json_schema", "json_object_schema", "json_object", "none"]
"""How an OpenAI-compatible endpoint is asked for structured output.

- ``json_schema``: OpenAI's ``response_format={"type": "json_schema", ...}`` (strict).
- ``json_object_schema``: ``{"type": "json_object", "schema": ...}`` (llama.cpp's server).
- ``json_object``: ``{"type": "json_object"}``; the schema goes into the prompt.
- ``none``: the schema goes into the prompt; the executor repairs the JSON.
- ``auto``: chosen from the provider, with a fallback down this list when an endpoint
  rejects a form.
"""


class Price(BaseModel):
    """Price of one model in USD per million tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: float = Field(ge=0, description="USD per 1M prompt tokens")
    output: float = Field(ge=0, description="USD per 1M completion tokens")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for a call with these token counts."""
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


def default_cache_dir() -> Path:
    """Directory of the request cache: ``$SGDE_CACHE_DIR`` or the user cache dir."""
    env = os.environ.get("SGDE_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return platformdirs.user_cache_path("sgde") / "requests"


def default_models_dir() -> Path:
    """Directory of assembled local models: ``$SGDE_MODELS_DIR`` or ``~/.cache/sgde/models``."""
    env = os.environ.get("SGDE_MODELS_DIR")
    if env:
        return Path(env).expanduser()
    return platformdirs.user_cache_path("sgde") / "models"


class ModelSettings(BaseModel):
    """Configuration of model backends for one process or run.

    Attributes:
        base_url: Base URL of ``openai-compatible`` endpoints (e.g.
            ``http://127.0.0.1:8080/v1``). Falls back to ``$SGDE_OPENAI_BASE_URL`` and
            ``$OPENAI_BASE_URL``; a name may carry its own (``openai-compatible:m@URL``).
        api_key: API key for HTTP providers; by default read from the provider's usual
            environment variable (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``).
        timeout_s: Per-request timeout of HTTP backends, seconds.
        max_retries: Retries after the first attempt on timeouts, 429, 5xx and broken
            responses (0 disables retrying).
        backoff_s: First backoff delay; doubles per retry (with jitter) up to
            ``max_backoff_s``. A ``Retry-After`` header takes precedence.
        max_backoff_s: Upper bound of one backoff delay, seconds.
        breaker_failures: Consecutive connection failures / 5xx of an HTTP endpoint after
            which its circuit breaker opens and calls fail at once (0: never).
        breaker_cooldown_s: How long an open breaker waits before one probe call; doubles
            after each failed probe (up to 12 times this, at least 120 s).
        max_concurrency: Concurrent requests per HTTP backend.
        structured_output: Structured-output form for OpenAI-compatible endpoints.
        extra_body: Extra JSON fields sent with each ``openai-compatible`` request; by
            default ``{"repeat_penalty": 1.0}`` (llama.cpp's server otherwise applies 1.1,
            which corrupts copied numbers; other servers ignore the field). ``{}`` sends none.
        cache_dir: Directory of the SQLite request cache (default: :func:`default_cache_dir`).
        models_dir: Directory of assembled local GGUF files (default:
            :func:`default_models_dir`).
        use_cache: Whether calls of a role go through the request cache; roles not listed
            are not cached. Default: only the teacher.
        n_threads: CPU threads of embedded llama.cpp models (default: all cores).
        n_ctx: Context window of embedded llama.cpp models, tokens.
        n_gpu_layers: Layers offloaded to a GPU by llama.cpp (0 = CPU only).
        prices: Price overrides, by full model name (``"openai:gpt-4o-mini"``) or by
            provider prefix (``"openai-compatible:"``); merged over the default table.
        prices_file: YAML file of further price overrides (same shape as ``prices``).
        budget_tokens: Hard cap on prompt + completion tokens across all roles.
        budget_usd: Hard cap on spend in USD across all roles.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    base_url: str | None = None
    api_key: str | None = Field(default=None, repr=False)
    timeout_s: float = Field(default=300.0, gt=0)
    max_retries: int = Field(default=4, ge=0, le=20)
    backoff_s: float = Field(default=1.0, ge=0)
    max_backoff_s: float = Field(default=30.0, ge=0)
    breaker_failures: int = Field(default=5, ge=0)
    breaker_cooldown_s: float = Field(default=10.0, ge=0)
    max_concurrency: int = Field(default=4, ge=1)
    structured_output: StructuredOutputMode = "auto"
    extra_body: dict[str, Any] | None = None
    cache_dir: Path | None = None
    models_dir: Path | None = None
    use_cache: dict[str, bool] = Field(default_factory=lambda: {"teacher": True})
    n_threads: int | None = Field(default=None, ge=1)
    n_ctx: int = Field(default=4096, ge=256)
    n_gpu_layers: int = Field(default=0, ge=-1)
    prices: dict[str, Price] = Field(default_factory=dict)
    prices_file: Path | None = None
    budget_tokens: int | None = Field(default=None, ge=0)
    budget_usd: float | None = Field(default=None, ge=0)

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    def resolved_cache_dir(self) -> Path:
        """The request-cache directory actually used."""
        return self.cache_dir if self.cache_dir is not None else default_cache_dir()

    def resolved_models_dir(self) -> Path:
        """The directory of assembled local models actually used."""
        return self.models_dir if self.models_dir is not None else default_models_dir()

    def resolved_threads(self) -> int:
        """Threads for llama.cpp: ``n_threads`` or the number of CPUs."""
        return self.n_threads or os.cpu_count() or 1

    def caches_role(self, role: str) -> bool:
        """Whether calls made for ``role`` go through the request cache."""
        return self.use_cache.get(role, False)
