"""Circuit breakers: open after consecutive endpoint failures, fail fast, probe, close."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import openai
import pytest

from sgde.errors import BackendError, CircuitOpenError
from sgde.models import ModelHub, ModelSettings, OpenAIBackend, RetryPolicy
from sgde.models.breaker import (
    BreakerPolicy,
    BreakerRegistry,
    CircuitBreaker,
    breaker_of,
    is_endpoint_failure,
)
from sgde.models.resolver import BLOCK_ENV, resolve_model
from sgde.models.retry import Failure, call_with_retries
from sgde.runtime.backend import ChatRequest, Message

try:  # the transport module the installed SDKs use
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older SDKs use httpx
    import httpx  # type: ignore[no-redef]

URL = "http://127.0.0.1:8999/v1"
DOWN = Failure("openai-compatible", "m at x: connection failed (ConnectError)", retryable=True)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def breaker(clock: Clock, failures: int = 3, cooldown: float = 10.0) -> CircuitBreaker:
    return CircuitBreaker(
        URL,
        policy=BreakerPolicy(failures=failures, cooldown_s=cooldown, max_cooldown_s=40.0),
        clock=clock,
    )


def fail(b: CircuitBreaker, failure: Failure = DOWN, times: int = 1) -> None:
    for _ in range(times):
        b.record_failure(failure, b.admit())


def completion() -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


class Server:
    """A mock transport: down (connection refused), 503s, or up."""

    def __init__(self) -> None:
        self.mode = "down"
        self.requests = 0

    def __call__(self, request: Any) -> Any:
        self.requests += 1
        if self.mode == "down":
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        if self.mode == "503":
            return httpx.Response(503, json={"error": {"message": "overloaded"}})
        return httpx.Response(200, json=completion())


def backend(server: Server, b: CircuitBreaker | None, clock: Clock, name: str = "m") -> Any:
    client = openai.AsyncOpenAI(
        api_key="k",
        base_url=URL,
        max_retries=0,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(server)),
    )
    return OpenAIBackend(
        f"openai-compatible:{name}",
        provider="openai-compatible",
        model=name,
        client=client,
        structured_output="none",
        policy=RetryPolicy(max_retries=4, backoff_s=1.0, max_backoff_s=8.0, jitter=0.0),
        sleep=clock.sleep,
        rng=random.Random(0),
        breaker=b,
    )


def req() -> ChatRequest:
    return ChatRequest(messages=(Message("user", "hi"),))


# -- the state machine -----------------------------------------------------------------------
def test_opens_after_consecutive_failures_and_refuses_at_once() -> None:
    clock = Clock()
    b = breaker(clock)
    fail(b, times=2)
    assert str(b.state) == "closed" and not b.is_open
    fail(b)
    assert str(b.state) == "open" and b.is_open
    assert b.retry_after_s == pytest.approx(10.0)
    with pytest.raises(CircuitOpenError) as info:
        b.admit()
    err = info.value
    assert isinstance(err, BackendError) and err.retryable is False
    assert err.endpoint == URL and URL in str(err) and "connection failed" in str(err)
    assert "running" in (err.hint or "") and "--resume" in (err.hint or "")
    clock.now += 4
    assert b.retry_after_s == pytest.approx(6.0)
    assert b.snapshot()["calls_refused"] == 1 and b.snapshot()["times_opened"] == 1


def test_an_answer_resets_the_count() -> None:
    clock = Clock()
    b = breaker(clock)
    fail(b, times=2)
    b.record_success(b.admit())
    fail(b, times=2)
    # a 4xx (or 429) is an answer too: the server is up
    fail(b, Failure("openai-compatible", "bad request", status=400))
    fail(b, Failure("openai-compatible", "slow down", status=429, retryable=True))
    fail(b, times=2)
    assert b.state == "closed"


def test_5xx_burst_opens_it() -> None:
    clock = Clock()
    b = breaker(clock)
    fail(b, Failure("openai-compatible", "overloaded", status=503, retryable=True), times=3)
    assert b.is_open
    assert "HTTP 503" in str(b.open_error())


def test_endpoint_failure_kinds() -> None:
    assert is_endpoint_failure(DOWN)
    assert is_endpoint_failure(Failure("p", "timed out", retryable=True))
    assert is_endpoint_failure(Failure("p", "boom", status=500))
    assert not is_endpoint_failure(Failure("p", "not found", status=404))
    assert not is_endpoint_failure(Failure("p", "rate", status=429, retryable=True))
    assert not is_endpoint_failure(Failure("p", "no key"))  # config error, not an outage


def test_half_open_lets_one_probe_through_and_closes_on_success() -> None:
    clock = Clock()
    b = breaker(clock)
    fail(b, times=3)
    clock.now += 10
    assert b.state == "half-open" and not b.is_open and b.retry_after_s == 0.0
    probe = b.admit()
    assert probe is True
    assert b.is_open and b.retry_after_s == pytest.approx(1.0)
    with pytest.raises(CircuitOpenError):
        b.admit()  # only one probe at a time
    b.record_success(probe)
    assert b.state == "closed" and b.admit() is False


def test_failed_probe_reopens_with_a_longer_cooldown_up_to_the_cap() -> None:
    clock = Clock()
    b = breaker(clock)
    fail(b, times=3)
    for expected in (20.0, 40.0, 40.0):
        clock.now += b.retry_after_s
        fail(b)  # the probe fails
        assert b.state == "open" and b.retry_after_s == pytest.approx(expected)
    clock.now += 40
    b.record_success(b.admit())
    fail(b, times=3)
    assert b.retry_after_s == pytest.approx(10.0)  # the cool-down starts over


def test_a_released_probe_frees_the_slot() -> None:
    clock = Clock()
    b = breaker(clock)
    fail(b, times=3)
    clock.now += 10
    b.release(b.admit())
    assert b.admit() is True


def test_disabled_policy_never_opens() -> None:
    b = breaker(Clock(), failures=0)
    fail(b, times=50)
    assert b.state == "closed"


def test_registry_shares_one_breaker_per_endpoint() -> None:
    reg = BreakerRegistry(BreakerPolicy(failures=2))
    assert reg.for_endpoint(URL) is reg.for_endpoint(URL + "/")
    assert reg.for_endpoint(URL) is not reg.for_endpoint("http://other/v1")
    assert len(reg) == 2 and {x.endpoint for x in reg} == {URL, "http://other/v1"}


# -- through the retry loop and the HTTP backend ------------------------------------------------
async def test_a_dead_endpoint_stops_retrying_when_the_breaker_opens() -> None:
    clock = Clock()
    server = Server()
    b = breaker(clock, failures=5)
    be = backend(server, b, clock)
    with pytest.raises(CircuitOpenError):
        await be.chat(req())
    # five attempts (1 + 2 + 4 + 8 s of backoff, as `sgde compile` with a dead teacher)...
    assert server.requests == 5 and sum(clock.sleeps) == pytest.approx(15.0)
    # ...then every later call fails at once, without a request or a sleep
    for _ in range(10):
        with pytest.raises(CircuitOpenError) as info:
            await be.chat(req())
        assert info.value.retryable is False
    assert server.requests == 5 and len(clock.sleeps) == 4
    await be.aclose()


async def test_probe_closes_the_breaker_when_the_server_is_back() -> None:
    clock = Clock()
    server = Server()
    b = breaker(clock, failures=2)
    be = backend(server, b, clock)
    with pytest.raises(CircuitOpenError):
        await be.chat(req())
    server.mode = "up"
    with pytest.raises(CircuitOpenError):
        await be.chat(req())  # still cooling down: nothing sent
    assert server.requests == 2
    clock.now += 10
    assert (await be.chat(req())).text == "ok"
    assert b.state == "closed" and server.requests == 3
    await be.aclose()


async def test_5xx_burst_is_shared_by_every_backend_on_the_endpoint() -> None:
    clock = Clock()
    server = Server()
    server.mode = "503"
    reg = BreakerRegistry(BreakerPolicy(failures=4, cooldown_s=30.0))
    student = backend(server, reg.for_endpoint(URL), clock, "student")
    teacher = backend(server, reg.for_endpoint(URL), clock, "teacher")
    with pytest.raises(CircuitOpenError):
        await student.chat(req())
    sent = server.requests
    assert sent == 4
    with pytest.raises(CircuitOpenError) as info:
        await teacher.chat(req())
    assert server.requests == sent and "HTTP 503" in str(info.value)
    assert breaker_of(student) is breaker_of(teacher) is reg.for_endpoint(URL)
    await student.aclose()
    await teacher.aclose()


async def test_concurrent_calls_to_a_dead_endpoint_fail_fast_together() -> None:
    clock = Clock()
    server = Server()
    b = breaker(clock, failures=5)
    be = backend(server, b, clock)
    results = await asyncio.gather(*(be.chat(req()) for _ in range(40)), return_exceptions=True)
    assert all(isinstance(r, CircuitOpenError) for r in results)
    # only the calls in flight before it opened reached the server (concurrency 4 + retries)
    assert server.requests <= 12
    assert max(clock.sleeps, default=0.0) <= 2.0
    server.mode = "up"
    clock.now += 10
    results = await asyncio.gather(*(be.chat(req()) for _ in range(8)), return_exceptions=True)
    assert sum(1 for r in results if isinstance(r, CircuitOpenError)) < 8
    assert b.state == "closed"
    assert all(r.text == "ok" for r in await asyncio.gather(*(be.chat(req()) for _ in range(8))))
    await be.aclose()


async def test_a_cancelled_probe_does_not_wedge_the_breaker() -> None:
    clock = Clock()
    b = breaker(clock, failures=1)
    b.record_failure(DOWN, b.admit())
    clock.now += 10
    started = asyncio.Event()

    async def hang() -> str:
        started.set()
        await asyncio.sleep(3600)
        return "never"

    task = asyncio.create_task(
        call_with_retries(hang, classify=lambda e: None, policy=RetryPolicy(), breaker=b)
    )
    await started.wait()
    assert b.is_open  # the probe is out
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async def ok() -> str:
        return "ok"

    assert await call_with_retries(ok, classify=lambda e: None, policy=RetryPolicy(), breaker=b)
    assert b.state == "closed"


async def test_the_hub_gives_backends_of_one_endpoint_one_breaker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(BLOCK_ENV, raising=False)  # resolving makes no request
    settings = ModelSettings(breaker_failures=2, breaker_cooldown_s=3.0)
    async with ModelHub(settings) as hub:
        a = hub.get(f"openai-compatible:student@{URL}")
        b = hub.get(f"openai-compatible:teacher@{URL}")
        c = hub.get("openai-compatible:x@http://127.0.0.1:8998/v1")
        bound = hub.bind({"student": f"openai-compatible:student@{URL}"})
        shared = breaker_of(a)
        assert shared is not None and shared is breaker_of(b) is breaker_of(bound["student"])
        assert breaker_of(c) is not shared
        assert shared.policy.failures == 2 and shared.policy.cooldown_s == 3.0
        assert len(hub.breakers) == 2
    other = resolve_model(f"openai-compatible:student@{URL}", settings=settings)
    assert breaker_of(other) is not None and breaker_of(other) is not shared
    await other.aclose()
    assert breaker_of(object()) is None


def test_threads_racing_a_half_open_breaker_get_exactly_one_probe() -> None:
    import threading

    clock = Clock()
    b = breaker(clock)
    fail(b, times=3)
    clock.now += 10
    barrier = threading.Barrier(16)
    probes: list[bool] = []
    refused: list[CircuitOpenError] = []

    def call() -> None:
        barrier.wait()
        try:
            probes.append(b.admit())
        except CircuitOpenError as exc:
            refused.append(exc)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert probes == [True] and len(refused) == 15
    b.record_success(True)
    assert str(b.state) == "closed"
