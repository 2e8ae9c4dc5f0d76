"""Real model backends: embedded llama.cpp models, OpenAI-compatible servers, Anthropic.

Start with :class:`ModelHub` (one per run) or :func:`resolve_model` (one backend)::

    async with ModelHub() as hub:
        bindings = hub.bind({"student": "local:smollm2-135m"})

Names are ``provider:model`` (see :mod:`sgde.models.names`).
"""

from sgde.models.anthropic_backend import AnthropicBackend
from sgde.models.breaker import BreakerPolicy, BreakerRegistry, CircuitBreaker, breaker_of
from sgde.models.cache import RequestCache, cache_key
from sgde.models.defaults import DEFAULT_STUDENT, DEFAULT_TEACHER
from sgde.models.hub import ModelHub, RoleBackend
from sgde.models.local import LOCAL_MODELS, LlamaBackend, LocalModel, model_path
from sgde.models.names import PROVIDERS, ModelName, known_model_names, parse_model_name
from sgde.models.openai_backend import OpenAIBackend
from sgde.models.resolver import resolve_model
from sgde.models.retry import Failure, RetryPolicy, call_with_retries, parse_retry_after
from sgde.models.settings import ModelSettings, Price, StructuredOutputMode
from sgde.models.usage import Budget, MeteredBackend, PriceTable, RoleUsage, UsageMeter

__all__ = [
    "DEFAULT_STUDENT",
    "DEFAULT_TEACHER",
    "LOCAL_MODELS",
    "PROVIDERS",
    "AnthropicBackend",
    "BreakerPolicy",
    "BreakerRegistry",
    "Budget",
    "CircuitBreaker",
    "Failure",
    "LlamaBackend",
    "LocalModel",
    "MeteredBackend",
    "ModelHub",
    "ModelName",
    "ModelSettings",
    "OpenAIBackend",
    "Price",
    "PriceTable",
    "RequestCache",
    "RetryPolicy",
    "RoleBackend",
    "RoleUsage",
    "StructuredOutputMode",
    "UsageMeter",
    "breaker_of",
    "cache_key",
    "call_with_retries",
    "known_model_names",
    "model_path",
    "parse_model_name",
    "parse_retry_after",
    "resolve_model",
]
