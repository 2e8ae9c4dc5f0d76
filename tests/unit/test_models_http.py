"""HTTP backends with mocked transports: retries, Retry-After, error mapping, capabilities."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest

from sgde.errors import BackendError
from sgde.models import AnthropicBackend, OpenAIBackend, RetryPolicy, call_with_retries
from sgde.models.retry import Failure, parse_retry_after, status_retryable
from sgde.runtime.backend import ChatRequest, Message

try:  # the transport module the installed SDKs use
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older SDKs use httpx
    import httpx  # type: ignore[no-redef]

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
Handler = Callable[[Any], Any]


def completion(content: str = '{"n": 1}', usage: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "c1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
    return body


class FakeClock:
    """Collects requested sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def openai_backend(
    handler: Handler, *, mode: str = "auto", retries: int = 3, clock: FakeClock | None = None
) -> tuple[OpenAIBackend, list[Any]]:
    seen: list[Any] = []

    def record(request: Any) -> Any:
        seen.append(request)
        return handler(request)

    client = openai.AsyncOpenAI(
        api_key="k",
        base_url="http://test/v1",
        max_retries=0,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(record)),
    )
    backend = OpenAIBackend(
        "openai-compatible:m",
        provider="openai-compatible",
        model="m",
        client=client,
        structured_output=mode,  # type: ignore[arg-type]
        extra_body={"repeat_penalty": 1.0},
        policy=RetryPolicy(max_retries=retries, backoff_s=1.0, max_backoff_s=8.0),
        sleep=(clock or FakeClock()).sleep,
        rng=random.Random(0),
    )
    return backend, seen


def scripted(*responses: Any) -> Handler:
    """Serve responses in order: (status, body, headers) tuples or exceptions."""
    queue = list(responses)

    def handler(request: Any) -> Any:
        item = queue.pop(0)
        if isinstance(item, Exception):
            raise item
        status, body, headers = item
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return httpx.Response(
            status, content=content, headers={"content-type": "application/json", **headers}
        )

    return handler


def req(**kw: Any) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "sys"), Message("user", "hi")), **kw)


async def test_429_honours_retry_after_then_succeeds() -> None:
    clock = FakeClock()
    backend, seen = openai_backend(
        scripted(
            (429, {"error": {"message": "slow down"}}, {"retry-after": "7"}),
            (200, completion(), {}),
        ),
        clock=clock,
    )
    response = await backend.chat(req())
    assert response.text == '{"n": 1}'
    assert response.usage.prompt_tokens == 12 and not response.usage_estimated
    assert clock.sleeps == [7.0]
    assert len(seen) == 2
    await backend.aclose()


async def test_5xx_backs_off_exponentially_and_gives_up() -> None:
    clock = FakeClock()
    backend, seen = openai_backend(
        scripted(*[(503, {"error": {"message": "overloaded"}}, {})] * 4), clock=clock, retries=3
    )
    with pytest.raises(BackendError) as info:
        await backend.chat(req())
    err = info.value
    assert (err.provider, err.status, err.retryable) == ("openai-compatible", 503, True)
    assert "gave up after 4 attempts" in str(err) and "overloaded" in str(err)
    assert len(seen) == 4
    assert [round(s) for s in clock.sleeps] == [1, 2, 4]  # + <=10 % jitter
    assert all(base <= s <= base * 1.1 for s, base in zip(clock.sleeps, [1, 2, 4], strict=True))


async def test_4xx_is_not_retried() -> None:
    backend, seen = openai_backend(
        scripted((401, {"error": {"message": "bad key"}}, {})), mode="none"
    )
    with pytest.raises(BackendError) as info:
        await backend.chat(req())
    assert (info.value.status, info.value.retryable) == (401, False)
    assert "API key" in str(info.value)
    assert len(seen) == 1


async def test_connection_errors_and_timeouts_are_retried() -> None:
    clock = FakeClock()
    backend, seen = openai_backend(
        scripted(
            httpx.ConnectError("refused"),
            httpx.ReadTimeout("slow"),
            (200, completion(), {}),
        ),
        clock=clock,
    )
    assert (await backend.chat(req())).text == '{"n": 1}'
    assert len(seen) == 3 and len(clock.sleeps) == 2


async def test_connection_failure_reports_provider_and_retryable() -> None:
    backend, _ = openai_backend(scripted(*[httpx.ConnectError("refused")] * 2), retries=1)
    with pytest.raises(BackendError) as info:
        await backend.chat(req())
    assert info.value.retryable and info.value.status is None
    assert "connection failed" in str(info.value) and "server is running" in str(info.value)


async def test_non_json_body_is_retryable() -> None:
    backend, seen = openai_backend(
        scripted((200, b"<html>oops</html>", {}), (200, completion(), {})), mode="none"
    )
    assert (await backend.chat(req())).text == '{"n": 1}'
    assert len(seen) == 2


async def test_missing_usage_is_estimated_and_flagged() -> None:
    backend, _ = openai_backend(scripted((200, completion(usage=False), {})))
    response = await backend.chat(req())
    assert response.usage_estimated
    assert response.usage.prompt_tokens > 0 and response.usage.completion_tokens > 0


async def test_empty_choices_are_retried() -> None:
    empty = completion()
    empty["choices"] = []
    backend, seen = openai_backend(scripted((200, empty, {}), (200, completion(), {})))
    assert (await backend.chat(req())).text == '{"n": 1}'
    assert len(seen) == 2


async def test_auto_mode_steps_down_to_json_object_schema_and_sticks() -> None:
    """llama.cpp's server answers HTTP 500 to OpenAI's json_schema form."""
    backend, seen = openai_backend(
        scripted(
            (500, {"error": {"message": "response_format"}}, {}),
            (200, completion(), {}),
            (200, completion(), {}),
        )
    )
    assert backend.capabilities.json_schema
    await backend.chat(req(json_schema=SCHEMA))
    await backend.chat(req(json_schema=SCHEMA))
    bodies = [json.loads(r.content) for r in seen]
    assert bodies[0]["response_format"]["type"] == "json_schema"
    assert bodies[0]["response_format"]["json_schema"]["strict"] is True
    assert bodies[1]["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert bodies[2]["response_format"] == {"type": "json_object", "schema": SCHEMA}
    assert backend.structured_output == "json_object_schema"
    assert bodies[1]["repeat_penalty"] == 1.0


async def test_auto_mode_last_resort_puts_schema_in_prompt() -> None:
    bad = (400, {"error": {"message": "unsupported"}}, {})
    backend, seen = openai_backend(scripted(bad, bad, bad, (200, completion(), {})))
    await backend.chat(req(json_schema=SCHEMA))
    last = json.loads(seen[-1].content)
    assert "response_format" not in last
    assert '"n"' in last["messages"][0]["content"]  # the schema joined the system message
    assert backend.structured_output == "none"


async def test_confirmed_mode_does_not_step_down_on_a_later_500() -> None:
    clock = FakeClock()
    backend, seen = openai_backend(
        scripted(
            (200, completion(), {}),
            (500, {"error": {"message": "transient"}}, {}),
            (200, completion(), {}),
        ),
        clock=clock,
    )
    await backend.chat(req(json_schema=SCHEMA))
    await backend.chat(req(json_schema=SCHEMA))
    assert backend.structured_output == "json_schema"
    assert len(clock.sleeps) == 1  # retried, not downgraded
    assert json.loads(seen[-1].content)["response_format"]["type"] == "json_schema"


async def test_explicit_modes_and_parameters() -> None:
    backend, seen = openai_backend(scripted((200, completion(), {})), mode="json_object")
    assert not backend.capabilities.json_schema and backend.capabilities.json_object
    await backend.chat(req(json_schema=SCHEMA, temperature=0.7, top_p=0.9, seed=3, stop=("x",)))
    body = json.loads(seen[0].content)
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["content"] == "sys"  # the caller prompts for the schema
    assert (body["temperature"], body["top_p"], body["seed"], body["stop"]) == (0.7, 0.9, 3, ["x"])
    none_backend, _ = openai_backend(scripted(), mode="none")
    assert none_backend.capabilities.json_object is False


async def test_retry_after_too_long_stops_retrying() -> None:
    clock = FakeClock()
    backend, seen = openai_backend(
        scripted((429, {"error": {"message": "quota"}}, {"retry-after": "3600"})), clock=clock
    )
    with pytest.raises(BackendError, match="asked to wait 3600 s") as info:
        await backend.chat(req())
    assert info.value.status == 429 and clock.sleeps == [] and len(seen) == 1


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"Retry-After": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    assert (
        parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480.0)
        == 10.0
    )
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None
    assert status_retryable(429) and status_retryable(502) and not status_retryable(400)


async def test_unclassified_exceptions_propagate_untouched() -> None:
    async def attempt() -> None:
        raise KeyError("mine")

    with pytest.raises(KeyError):
        await call_with_retries(attempt, classify=lambda e: None, policy=RetryPolicy())


async def test_call_with_retries_counts_attempts() -> None:
    calls = 0
    clock = FakeClock()

    async def attempt() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RuntimeError("flaky")
        return "ok"

    def classify(exc: Exception) -> Failure:
        return Failure("p", str(exc), status=502, retryable=True)

    result = await call_with_retries(
        attempt, classify=classify, policy=RetryPolicy(max_retries=5), sleep=clock.sleep
    )
    assert result == "ok" and calls == 3 and len(clock.sleeps) == 2


def anthropic_backend(handler: Handler, clock: FakeClock) -> tuple[AnthropicBackend, list[Any]]:
    seen: list[Any] = []

    def record(request: Any) -> Any:
        seen.append(request)
        return handler(request)

    client = anthropic.AsyncAnthropic(
        api_key="k",
        base_url="http://test",
        max_retries=0,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(record)),
    )
    return AnthropicBackend(
        "anthropic:claude-x",
        model="claude-x",
        client=client,
        sleep=clock.sleep,
        rng=random.Random(0),
    ), seen


def anthropic_message(tool_input: dict[str, Any] | None) -> dict[str, Any]:
    content: list[dict[str, Any]]
    if tool_input is None:
        content = [{"type": "text", "text": "plain answer"}]
    else:
        content = [{"type": "tool_use", "id": "t1", "name": "respond", "input": tool_input}]
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": content,
        "stop_reason": "tool_use" if tool_input is not None else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 30, "output_tokens": 9},
    }


async def test_anthropic_forced_tool_and_retry() -> None:
    clock = FakeClock()
    backend, seen = anthropic_backend(
        scripted(
            (
                529,
                {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
                {"retry-after": "2"},
            ),
            (200, anthropic_message({"n": 4}), {}),
        ),
        clock,
    )
    response = await backend.chat(req(json_schema=SCHEMA))
    assert json.loads(response.text) == {"n": 4}
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (30, 9)
    assert clock.sleeps == [2.0]
    body = json.loads(seen[-1].content)
    assert body["system"] == "sys"
    assert body["messages"] == [{"role": "user", "content": "hi"}]
    assert body["tools"][0]["input_schema"] == SCHEMA
    assert body["tool_choice"] == {"type": "tool", "name": "respond"}
    await backend.aclose()


async def test_anthropic_plain_text_and_error_mapping() -> None:
    clock = FakeClock()
    backend, _ = anthropic_backend(
        scripted(
            (200, anthropic_message(None), {}),
            (
                400,
                {"type": "error", "error": {"type": "invalid_request_error", "message": "bad"}},
                {},
            ),
        ),
        clock,
    )
    assert (await backend.chat(req())).text == "plain answer"
    with pytest.raises(BackendError) as info:
        await backend.chat(req())
    assert (info.value.provider, info.value.status, info.value.retryable) == (
        "anthropic",
        400,
        False,
    )


async def test_concurrent_calls_follow_a_step_down_without_backoff() -> None:
    import asyncio

    clock = FakeClock()

    def handler(request: Any) -> Any:
        body = json.loads(request.content)
        if body["response_format"]["type"] == "json_schema":
            return httpx.Response(500, json={"error": {"message": "unsupported"}})
        return httpx.Response(200, json=completion())

    backend, seen = openai_backend(handler, clock=clock)
    results = await asyncio.gather(*(backend.chat(req(json_schema=SCHEMA)) for _ in range(4)))
    assert all(r.text == '{"n": 1}' for r in results)
    assert backend.structured_output == "json_object_schema"
    assert clock.sleeps == []  # the rejections were not treated as failures
    assert len(seen) == 8  # each call: one rejected form, one accepted


def test_strict_schema_conversion() -> None:
    from sgde.models.openai_backend import strict_schema

    schema = {
        "type": "object",
        "properties": {
            "type": {"type": "string"},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"x": {"type": "number"}},
                    "required": ["x"],
                },
            },
        },
        "required": ["type", "items"],
    }
    converted, strict = strict_schema(schema)
    assert strict
    assert converted["additionalProperties"] is False
    assert converted["properties"]["items"]["items"]["additionalProperties"] is False
    assert converted["properties"]["type"] == {"type": "string"}
    assert "additionalProperties" not in schema  # the input is not mutated
    _, strict = strict_schema(
        {"type": "object", "properties": {"a": {}, "b": {}}, "required": ["a"]}
    )
    assert not strict  # optional properties: sent best-effort, meaning unchanged


async def test_openai_provider_parameters() -> None:
    client = openai.AsyncOpenAI(
        api_key="k",
        base_url="http://test/v1",
        max_retries=0,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(lambda r: None)),
    )
    gpt = OpenAIBackend("openai:gpt-4o-mini", provider="openai", model="gpt-4o-mini", client=client)
    kwargs = gpt.request_kwargs(req(max_tokens=33, temperature=0.5), "json_schema")
    assert kwargs["max_completion_tokens"] == 33 and "max_tokens" not in kwargs
    assert kwargs["temperature"] == 0.5
    o3 = OpenAIBackend("openai:o3-mini", provider="openai", model="o3-mini", client=client)
    assert "temperature" not in o3.request_kwargs(req(temperature=0.5, top_p=0.9), "json_schema")
    await client.close()
