"""Model names: parsing, suggestions, blocking real models in unit tests, resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from sgde.errors import ModelNotFoundError, UsageError
from sgde.models import (
    LlamaBackend,
    ModelSettings,
    OpenAIBackend,
    known_model_names,
    parse_model_name,
    resolve_model,
)
from sgde.models.resolver import BLOCK_ENV
from sgde.runtime.backend import ChatRequest


@pytest.fixture
def unblocked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BLOCK_ENV, raising=False)
    for var in ("SGDE_OPENAI_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY", "OLLAMA_HOST"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize(
    ("name", "provider", "model"),
    [
        ("local:smollm2-135m", "local", "smollm2-135m"),
        ("openai:gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("ollama:qwen2.5-coder:1.5b", "ollama", "qwen2.5-coder:1.5b"),
        ("anthropic:claude-haiku-4-5", "anthropic", "claude-haiku-4-5"),
        ("  OpenAI-Compatible:my-model ", "openai-compatible", "my-model"),
        ("local:/models/x.gguf", "local", "/models/x.gguf"),
    ],
)
def test_parse_valid_names(name: str, provider: str, model: str) -> None:
    parsed = parse_model_name(name)
    assert (parsed.provider, parsed.model) == (provider, model)


def test_inline_base_url_for_openai_compatible() -> None:
    parsed = parse_model_name("openai-compatible:qwen@http://127.0.0.1:8080/v1/")
    assert parsed.model == "qwen"
    assert parsed.base_url == "http://127.0.0.1:8080/v1"
    assert parsed.full == "openai-compatible:qwen@http://127.0.0.1:8080/v1"


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("local:smolm2-135m", "local:smollm2-135m"),
        ("local:qwen2.5-coder-1.5", "local:qwen2.5-coder-1.5b"),
        ("opena:gpt-4o", "openai:gpt-4o"),
        ("antropic:claude-x", "anthropic:claude-x"),
        ("smollm2-135m", "local:smollm2-135m"),
    ],
)
def test_typos_get_suggestions(name: str, suggestion: str) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        parse_model_name(name)
    assert suggestion in info.value.suggestions
    assert suggestion in str(info.value)


def test_empty_model_is_an_error() -> None:
    with pytest.raises(ModelNotFoundError, match="has no model"):
        parse_model_name("openai:")


def test_known_names_include_every_local_model() -> None:
    names = known_model_names()
    for expected in (
        "local:smollm2-135m",
        "local:qwen2.5-coder-0.5b",
        "local:qwen2.5-coder-1.5b",
        "local:gemma3-270m",
    ):
        assert expected in names


def test_real_models_blocked_in_unit_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BLOCK_ENV, "1")
    for name in ("local:smollm2-135m", "openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"):
        with pytest.raises(UsageError, match="blocked in unit tests"):
            resolve_model(name)


def test_blocking_still_reports_bad_names_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BLOCK_ENV, "1")
    with pytest.raises(ModelNotFoundError):
        resolve_model("local:nope")


@pytest.mark.usefixtures("unblocked")
def test_openai_compatible_needs_a_base_url() -> None:
    with pytest.raises(UsageError, match="base URL") as info:
        resolve_model("openai-compatible:m")
    assert "--base-url" in str(info.value)


@pytest.mark.usefixtures("unblocked")
async def test_openai_compatible_base_url_from_settings_env_and_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend = resolve_model(
        "openai-compatible:m", settings=ModelSettings(base_url="http://a:1/v1/")
    )
    assert isinstance(backend, OpenAIBackend)
    assert str(backend._client.base_url).rstrip("/") == "http://a:1/v1"
    await backend.aclose()
    monkeypatch.setenv("SGDE_OPENAI_BASE_URL", "http://b:2/v1")
    backend = resolve_model("openai-compatible:m")
    assert isinstance(backend, OpenAIBackend)
    assert str(backend._client.base_url).rstrip("/") == "http://b:2/v1"
    kwargs = backend.request_kwargs(ChatRequest(messages=()), "none")
    assert kwargs["extra_body"] == {"repeat_penalty": 1.0}
    await backend.aclose()
    backend = resolve_model("openai-compatible:m@http://c:3/v1")
    assert isinstance(backend, OpenAIBackend)
    assert str(backend._client.base_url).rstrip("/") == "http://c:3/v1"
    await backend.aclose()


@pytest.mark.usefixtures("unblocked")
async def test_ollama_default_url() -> None:
    backend = resolve_model("ollama:llama3")
    assert isinstance(backend, OpenAIBackend)
    assert str(backend._client.base_url).rstrip("/") == "http://localhost:11434/v1"
    await backend.aclose()


@pytest.mark.usefixtures("unblocked")
def test_openai_needs_a_key() -> None:
    with pytest.raises(UsageError, match="API key") as info:
        resolve_model("openai:gpt-4o-mini")
    assert "OPENAI_API_KEY" in str(info.value)


@pytest.mark.usefixtures("unblocked")
def test_anthropic_needs_a_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(UsageError, match="ANTHROPIC_API_KEY"):
        resolve_model("anthropic:claude-haiku-4-5")


@pytest.mark.usefixtures("unblocked")
def test_local_path_must_exist_and_be_gguf(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        resolve_model(f"local:{tmp_path / 'missing.gguf'}")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"NOPE" + b"\0" * 16)
    with pytest.raises(UsageError, match="not a GGUF"):
        resolve_model(f"local:{bad}")
    good = tmp_path / "good.gguf"
    good.write_bytes(b"GGUF" + b"\0" * 16)
    backend = resolve_model(f"local:{good}", settings=ModelSettings(n_threads=3, n_ctx=1024))
    assert isinstance(backend, LlamaBackend)
    assert (backend.model_path, backend.n_threads, backend.n_ctx) == (good, 3, 1024)
    assert not backend.loaded  # loading is lazy


def test_public_api_is_exported() -> None:
    import types

    import sgde.models as models

    defined = {
        name
        for name, value in vars(models).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert defined == set(models.__all__)


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("olama:qwen", "ollama:qwen"), ("Anthropik:claude-x", "anthropic:claude-x"), ("gpt:4o", None)],
)
def test_unknown_provider_hint_has_did_you_mean_and_accepted_forms(
    name: str, suggestion: str | None
) -> None:
    with pytest.raises(ModelNotFoundError, match="unknown model provider") as info:
        parse_model_name(name)
    hint = info.value.hint or ""
    if suggestion is None:
        assert "did you mean" not in hint
    else:
        assert hint.startswith(f"did you mean {suggestion!r}?")
    for form in (
        "local:NAME",
        "local:/path/model.gguf",
        "openai:MODEL",
        "openai-compatible:MODEL (with --base-url",
        "ollama:MODEL",
        "anthropic:MODEL",
    ):
        assert form in hint
