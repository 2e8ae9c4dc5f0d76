"""The request cache key includes the endpoint: two servers with one model id never share."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import openai

from sgde.models import ModelHub, ModelSettings
from sgde.models.cache import backend_endpoint, cache_key
from sgde.models.openai_backend import OpenAIBackend
from sgde.runtime.backend import Backend, Capabilities, ChatRequest, ChatResponse, Message, Usage


class _Server:
    """A fake HTTP-served model: same name, its own endpoint, answers with its endpoint."""

    def __init__(self, name: str, endpoint: str | None) -> None:
        self._name = name
        self.endpoint = endpoint
        self.calls = 0

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities()

    async def chat(self, request: ChatRequest) -> ChatResponse:
        self.calls += 1
        return ChatResponse(text=f"from {self.endpoint}", usage=Usage(1, 1, 1), model=self._name)

    async def aclose(self) -> None:
        return None


def _req() -> ChatRequest:
    return ChatRequest(messages=(Message("user", "2+2?"),))


def test_key_depends_on_the_endpoint_and_keeps_old_keys_without_one() -> None:
    request = _req()
    a = cache_key("openai-compatible:m", request, endpoint="http://a:8080/v1")
    b = cache_key("openai-compatible:m", request, endpoint="http://b:8080/v1")
    assert a != b
    assert a == cache_key("openai-compatible:m", request, endpoint="http://a:8080/v1/")
    # No endpoint (embedded models): the key is the one earlier versions wrote.
    legacy = {"v": 1, "model": "local:x", **request.cache_key_data()}
    blob = json.dumps(legacy, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    assert cache_key("local:x", request) == hashlib.sha256(blob.encode()).hexdigest()
    assert cache_key("local:x", request, endpoint=None) == cache_key("local:x", request)


def test_openai_backend_reports_its_base_url() -> None:
    client = openai.AsyncOpenAI(api_key="k", base_url="http://127.0.0.1:9/v1/", max_retries=0)
    backend = OpenAIBackend(
        "openai-compatible:m", provider="openai-compatible", model="m", client=client
    )
    assert backend.endpoint == "http://127.0.0.1:9/v1"
    assert backend_endpoint(backend) == "http://127.0.0.1:9/v1"
    assert backend_endpoint(object()) is None


async def test_two_servers_with_one_model_id_do_not_share_cache_entries(tmp_path: Path) -> None:
    servers = {
        "http://a/v1": _Server("openai-compatible:m", "http://a/v1"),
        "http://b/v1": _Server("openai-compatible:m", "http://b/v1"),
    }

    def hub_for(url: str) -> ModelHub:
        def resolver(name: str, settings: ModelSettings) -> Backend:
            return servers[url]

        settings = ModelSettings(cache_dir=tmp_path / "cache", use_cache={"student": True})
        return ModelHub(settings, resolver=resolver)

    answers = []
    for url in ("http://a/v1", "http://b/v1", "http://a/v1"):
        async with hub_for(url) as hub:
            student = hub.bind({"student": "openai-compatible:m"})["student"]
            answers.append((await student.chat(_req())).text)
    assert answers == ["from http://a/v1", "from http://b/v1", "from http://a/v1"]
    assert servers["http://a/v1"].calls == 1  # the third call replayed a's own entry
    assert servers["http://b/v1"].calls == 1
