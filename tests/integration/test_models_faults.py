"""The OpenAI-compatible backend against a real fault-injecting HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from model_servers import Fault, FaultServer

from sgde.errors import BackendError
from sgde.models import ModelHub, ModelSettings, OpenAIBackend, resolve_model
from sgde.runtime.backend import ChatRequest, Message

pytestmark = pytest.mark.slow

REQUEST = ChatRequest(messages=(Message("user", "What is six times seven?"),), max_tokens=16)


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with FaultServer() as srv:
        yield srv


@pytest.fixture
async def backend(server: FaultServer) -> AsyncIterator[OpenAIBackend]:
    settings = ModelSettings(
        base_url=server.base_url, timeout_s=0.5, max_retries=2, backoff_s=0.05, max_backoff_s=0.2
    )
    made = resolve_model("openai-compatible:fault", settings=settings)
    assert isinstance(made, OpenAIBackend)
    yield made
    await made.aclose()


async def test_429_retry_after_is_honoured(server: FaultServer, backend: OpenAIBackend) -> None:
    server.play(Fault("status", status=429, headers={"Retry-After": "1"}))
    response = await backend.chat(REQUEST)
    assert json.loads(response.text) == {"answer": 42}
    (t0, _), (t1, _) = server.requests
    assert t1 - t0 >= 0.95  # waited as told, not the 0.05 s backoff


async def test_500_then_success(server: FaultServer, backend: OpenAIBackend) -> None:
    server.play(Fault("status", status=500), Fault("status", status=503))
    response = await backend.chat(REQUEST)
    assert response.text == '{"answer": 42}'
    assert response.usage.prompt_tokens == 10 and not response.usage_estimated
    assert len(server.requests) == 3


async def test_persistent_500_reports_provider_status_retryable(
    server: FaultServer, backend: OpenAIBackend
) -> None:
    server.play(*[Fault("status", status=500)] * 3)
    with pytest.raises(BackendError) as info:
        await backend.chat(REQUEST)
    err = info.value
    assert (err.provider, err.status, err.retryable) == ("openai-compatible", 500, True)
    assert "gave up after 3 attempts" in str(err)
    assert server.base_url in str(err)
    assert len(server.requests) == 3


async def test_400_is_not_retried(server: FaultServer, backend: OpenAIBackend) -> None:
    server.play(Fault("status", status=400))
    with pytest.raises(BackendError) as info:
        await backend.chat(REQUEST)
    assert (info.value.status, info.value.retryable) == (400, False)
    assert len(server.requests) == 1


async def test_slow_response_times_out_then_retry_succeeds(
    server: FaultServer, backend: OpenAIBackend
) -> None:
    server.play(Fault("slow", delay_s=1.0))
    start = time.monotonic()
    response = await backend.chat(REQUEST)
    assert response.text == '{"answer": 42}'
    assert len(server.requests) == 2
    assert time.monotonic() - start < 1.0  # did not wait for the slow answer


async def test_slow_every_time_reports_timeout(server: FaultServer, backend: OpenAIBackend) -> None:
    server.play(*[Fault("slow", delay_s=0.8)] * 3)
    with pytest.raises(BackendError, match="timed out") as info:
        await backend.chat(REQUEST)
    assert info.value.retryable and info.value.status is None
    assert len(server.requests) == 3


async def test_truncated_body_is_retried(server: FaultServer, backend: OpenAIBackend) -> None:
    server.play(Fault("truncated"))
    assert (await backend.chat(REQUEST)).text == '{"answer": 42}'
    assert len(server.requests) == 2


async def test_truncated_every_time_says_so(server: FaultServer, backend: OpenAIBackend) -> None:
    server.play(*[Fault("truncated")] * 3)
    with pytest.raises(BackendError, match="broken off") as info:
        await backend.chat(REQUEST)
    assert info.value.retryable


async def test_non_json_body(server: FaultServer, backend: OpenAIBackend) -> None:
    server.play(*[Fault("not_json")] * 3)
    with pytest.raises(BackendError, match="not valid JSON") as info:
        await backend.chat(REQUEST)
    assert info.value.retryable and len(server.requests) == 3
    server.play(Fault("not_json"))
    assert (await backend.chat(REQUEST)).text == '{"answer": 42}'


async def test_missing_usage_is_estimated_and_metered(server: FaultServer) -> None:
    server.play(Fault("no_usage", content='{"answer": 7}'))
    settings = ModelSettings(base_url=server.base_url, use_cache={})
    async with ModelHub(settings) as hub:
        student = hub.bind({"student": "openai-compatible:fault"})["student"]
        response = await student.chat(REQUEST)
        assert response.usage_estimated and response.usage.total_tokens > 0
        report = hub.usage_report()["roles"]["student"]
        assert report["estimated_calls"] == 1 and report["calls"] == 1


async def test_server_down_is_a_connection_error() -> None:
    from model_servers import free_port

    settings = ModelSettings(
        base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=1, backoff_s=0.01
    )
    backend = resolve_model("openai-compatible:m", settings=settings)
    with pytest.raises(BackendError, match="connection failed") as info:
        await backend.chat(REQUEST)
    assert info.value.retryable and "server is running" in str(info.value)
    await backend.aclose()
