"""Turn a ``provider:model`` name into a concrete backend."""

from __future__ import annotations

import os
from pathlib import Path

from sgde.errors import ModelNotFoundError, UsageError
from sgde.models.breaker import BreakerPolicy, BreakerRegistry, CircuitBreaker
from sgde.models.names import ModelName, parse_model_name
from sgde.models.retry import RetryPolicy
from sgde.models.settings import ModelSettings
from sgde.runtime.backend import Backend

__all__ = ["BLOCK_ENV", "DEFAULT_OLLAMA_URL", "resolve_model"]

BLOCK_ENV = "SGDE_BLOCK_REAL_MODELS"
"""When ``"1"``, resolving any real model raises :class:`UsageError` (unit tests set it)."""

DEFAULT_OLLAMA_URL = "http://localhost:11434/v1"
_NO_KEY = "sgde-no-key"  # sent to servers that need no key; the SDK insists on one


def _policy(settings: ModelSettings) -> RetryPolicy:
    return RetryPolicy(
        max_retries=settings.max_retries,
        backoff_s=settings.backoff_s,
        max_backoff_s=settings.max_backoff_s,
    )


def breaker_policy(settings: ModelSettings) -> BreakerPolicy:
    """The circuit-breaker policy that ``settings`` ask for."""
    cooldown = settings.breaker_cooldown_s
    return BreakerPolicy(
        failures=settings.breaker_failures,
        cooldown_s=cooldown,
        max_cooldown_s=max(120.0, 12 * cooldown),
    )


def _breaker(
    client: object, settings: ModelSettings, breakers: BreakerRegistry | None
) -> CircuitBreaker:
    registry = breakers if breakers is not None else BreakerRegistry(breaker_policy(settings))
    return registry.for_endpoint(str(getattr(client, "base_url", "") or "endpoint"))


def resolve_model(
    name: str,
    *,
    settings: ModelSettings | None = None,
    breakers: BreakerRegistry | None = None,
) -> Backend:
    """Create the backend for ``name``.

    Each call creates a new backend (a local model is loaded on its first call); use
    :class:`~sgde.models.ModelHub` to share one backend per name within a run.

    Args:
        name: ``provider:model`` (see :mod:`sgde.models.names`).
        settings: Model settings (defaults when omitted).
        breakers: Circuit breakers of the run, one per endpoint (the hub passes its own);
            without it an HTTP backend gets a breaker of its own.

    Raises:
        ModelNotFoundError: Unknown provider or local model, missing local packages.
        UsageError: Missing API key or base URL, SDK not installed, or real models
            blocked (``SGDE_BLOCK_REAL_MODELS=1``).
    """
    settings = settings or ModelSettings()
    parsed = parse_model_name(name)
    if os.environ.get(BLOCK_ENV) == "1":
        raise UsageError(
            f"real model calls are blocked in unit tests ({BLOCK_ENV}=1): "
            f"cannot resolve {parsed.full!r}",
            hint="use sgde.testing.ScriptedBackend or FunctionBackend, or move the test to "
            "tests/integration and mark it slow",
        )
    if parsed.provider == "local":
        return _local(parsed, settings)
    if parsed.provider == "anthropic":
        return _anthropic(parsed, settings, breakers)
    return _openai(parsed, settings, breakers)


def _local(parsed: ModelName, settings: ModelSettings) -> Backend:
    from sgde.models.local import LlamaBackend, lookup_local_model
    from sgde.models.local.assemble import ensure_assembled

    if parsed.is_local_path:
        path = Path(parsed.model).expanduser()
        if not path.is_file():
            raise ModelNotFoundError(
                f"local model file {str(path)!r} does not exist",
                hint="give the path of a .gguf file, or a registered name (sgde models list)",
            )
        with path.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise UsageError(f"{path} is not a GGUF file (no GGUF magic bytes)")
    else:
        path = ensure_assembled(lookup_local_model(parsed.model), settings.resolved_models_dir())
    return LlamaBackend(
        parsed.full,
        path,
        n_threads=settings.resolved_threads(),
        n_ctx=settings.n_ctx,
        n_gpu_layers=settings.n_gpu_layers,
    )


def _openai(
    parsed: ModelName, settings: ModelSettings, breakers: BreakerRegistry | None
) -> Backend:
    import openai

    from sgde.models.openai_backend import OpenAIBackend

    provider = parsed.provider
    extra_body = None
    if provider == "openai":
        api_key = settings.api_key or os.environ.get("OPENAI_API_KEY")
        if not api_key:
            raise UsageError(
                f"{parsed.full!r} needs an OpenAI API key",
                hint="set OPENAI_API_KEY (or pass --api-key)",
            )
        base_url = None  # the SDK's default, or $OPENAI_BASE_URL
    elif provider == "ollama":
        api_key = settings.api_key or "ollama"
        host = os.environ.get("OLLAMA_HOST")
        base_url = _ollama_url(host) if host else DEFAULT_OLLAMA_URL
    else:
        base_url = (
            parsed.base_url
            or settings.base_url
            or os.environ.get("SGDE_OPENAI_BASE_URL")
            or os.environ.get("OPENAI_BASE_URL")
        )
        if not base_url:
            raise UsageError(
                f"{parsed.full!r} needs the server's base URL",
                hint="pass --base-url http://127.0.0.1:8080/v1, set SGDE_OPENAI_BASE_URL, or "
                "name it openai-compatible:MODEL@http://HOST:PORT/v1",
            )
        api_key = (
            settings.api_key
            or os.environ.get("SGDE_OPENAI_API_KEY")
            or os.environ.get("OPENAI_API_KEY")
            or _NO_KEY
        )
        extra_body = (
            settings.extra_body if settings.extra_body is not None else {"repeat_penalty": 1.0}
        )
    client = openai.AsyncOpenAI(
        api_key=api_key, base_url=base_url, timeout=settings.timeout_s, max_retries=0
    )
    return OpenAIBackend(
        parsed.full,
        provider=provider,
        model=parsed.model,
        client=client,
        structured_output=settings.structured_output,
        extra_body=extra_body,
        policy=_policy(settings),
        max_concurrency=settings.max_concurrency,
        breaker=_breaker(client, settings, breakers),
    )


def _ollama_url(host: str) -> str:
    """``$OLLAMA_HOST`` (``host:port`` or a URL) as an OpenAI-compatible base URL."""
    url = host if host.startswith(("http://", "https://")) else f"http://{host}"
    return url.rstrip("/") + "/v1"


def _anthropic(
    parsed: ModelName, settings: ModelSettings, breakers: BreakerRegistry | None
) -> Backend:
    from sgde.models.anthropic_backend import AnthropicBackend, import_anthropic

    anthropic = import_anthropic()
    api_key = settings.api_key or os.environ.get("ANTHROPIC_API_KEY")
    if not api_key:
        raise UsageError(
            f"{parsed.full!r} needs an Anthropic API key",
            hint="set ANTHROPIC_API_KEY (or pass --api-key)",
        )
    client = anthropic.AsyncAnthropic(api_key=api_key, timeout=settings.timeout_s, max_retries=0)
    return AnthropicBackend(
        parsed.full,
        model=parsed.model,
        client=client,
        policy=_policy(settings),
        max_concurrency=settings.max_concurrency,
        breaker=_breaker(client, settings, breakers),
    )
