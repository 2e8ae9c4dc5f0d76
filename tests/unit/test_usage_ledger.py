"""One usage ledger: every count of tokens a run reports comes from a :class:`UsageMeter`."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from sgde.models.usage import MeteredBackend, UsageMeter
from sgde.optimize.teacher import Teacher
from sgde.runtime.backend import ChatRequest, ChatResponse, Message, Usage
from sgde.testing import FunctionBackend

REQUEST = ChatRequest(messages=(Message("user", "hi"),))
CODE = "def run():\n    return 1"


class _CacheAnswering(FunctionBackend):
    """Answers every other call as a cache hit (as a hub's role backend does)."""

    def __init__(self) -> None:
        super().__init__(lambda request: "ok")
        self.n = 0

    async def chat(self, request: ChatRequest) -> ChatResponse:
        response = await super().chat(request)
        self.n += 1
        return replace(response, cached=self.n % 2 == 0)


def test_metered_backend_counts_spent_and_cached_calls_apart() -> None:
    meter = UsageMeter()
    backend = MeteredBackend("student", _CacheAnswering(), meter)
    responses = [asyncio.run(backend.chat(REQUEST)) for _ in range(4)]
    entry = meter.details()["student"]
    spent = sum((r.usage for r in responses if not r.cached), Usage())
    replayed = sum((r.usage for r in responses if r.cached), Usage())
    assert entry.usage.total_tokens == spent.total_tokens > 0
    assert entry.cached_calls == 2
    assert entry.replayed.total_tokens == replayed.total_tokens
    assert meter.to_dict()["student"]["replayed_tokens"] == replayed.total_tokens


def test_teacher_usage_is_read_from_the_ledger() -> None:
    meter = UsageMeter()
    backend = MeteredBackend("teacher", FunctionBackend(lambda r: CODE), meter)
    teacher = Teacher(backend, meter=meter)
    asyncio.run(teacher.code("write code", purpose="test"))
    assert teacher.usage == meter.role_usage("teacher")
    assert teacher.usage.total_tokens > 0
    # Without a ledger the teacher meters its backend into one of its own.
    alone = Teacher(FunctionBackend(lambda r: CODE))
    asyncio.run(alone.code("write code", purpose="test"))
    assert alone.usage.total_tokens == teacher.usage.total_tokens


def test_restore_continues_a_ledger() -> None:
    first = UsageMeter()
    first.record("teacher", Usage(10, 5, 1, 0.5))
    first.record_cached("teacher", Usage(3, 4, 1, 0.0))
    second = UsageMeter()
    second.record("teacher", Usage(1, 1, 1, 0.1))
    second.restore(first.to_dict())
    entry = second.details()["teacher"]
    assert entry.usage.total_tokens == 17 and entry.usage.calls == 2
    assert entry.cached_calls == 1 and entry.replayed.total_tokens == 7
    assert round(entry.usage.usd, 6) == 0.6


def test_a_compile_records_into_the_hub_ledger_once() -> None:
    from sgde.models import ModelHub, ModelSettings
    from sgde.optimize.compiler import _ledger, _metered

    async def scenario() -> None:
        async with ModelHub(ModelSettings(use_cache={"teacher": False, "student": False})) as hub:
            fakes = {role: FunctionBackend(lambda r: "x") for role in ("teacher", "student")}
            bound = hub.bind(fakes)
            ledger = _ledger(bound["teacher"], bound["student"], None)
            assert ledger is hub.meter  # the hub's ledger, not a second one
            teacher = _metered("teacher", bound["teacher"], ledger)
            assert teacher is bound["teacher"]  # not wrapped again: no double count
            await teacher.chat(REQUEST)
            assert hub.meter.role_usage("teacher").calls == 1
            # Raw backends get a ledger of their own, fed through MeteredBackend.
            raw = FunctionBackend(lambda r: "x")
            own = _ledger(raw, raw, None)
            assert own is not hub.meter
            assert isinstance(_metered("student", raw, own), MeteredBackend)

    asyncio.run(scenario())
