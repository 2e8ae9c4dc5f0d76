"""ModelHub: shared backends, per-role metering, prices, budgets and the request cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sgde.errors import BackendError, BudgetExceeded, UsageError
from sgde.models import ModelHub, ModelSettings, Price, PriceTable, RequestCache, cache_key
from sgde.models.usage import Budget, load_prices_file
from sgde.runtime.backend import Backend, Capabilities, ChatRequest, ChatResponse, Message, Usage


class CountingBackend:
    """A fake model: answers with its call number; can fail or block on demand."""

    def __init__(self, name: str, *, prompt: int = 100, completion: int = 20) -> None:
        self._name = name
        self.calls: list[ChatRequest] = []
        self.closed = False
        self.fail_next = False
        self.prompt = prompt
        self.completion = completion
        self.gate: asyncio.Event | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(json_schema=True)

    async def chat(self, request: ChatRequest) -> ChatResponse:
        self.calls.append(request)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise BackendError("boom", provider="fake", status=503, retryable=True)
        return ChatResponse(
            text=f"answer {len(self.calls)}",
            usage=Usage(self.prompt, self.completion, 1),
            model=self._name,
        )

    async def aclose(self) -> None:
        self.closed = True


def _req(text: str = "question", **kw: object) -> ChatRequest:
    return ChatRequest(messages=(Message("user", text),), **kw)  # type: ignore[arg-type]


def _hub(tmp_path: Path, **settings: object) -> tuple[ModelHub, dict[str, CountingBackend]]:
    made: dict[str, CountingBackend] = {}

    def resolver(name: str, s: ModelSettings) -> Backend:
        made[name] = CountingBackend(name)
        return made[name]

    hub = ModelHub(ModelSettings(cache_dir=tmp_path / "cache", **settings), resolver=resolver)
    return hub, made


async def test_one_backend_per_name_shared_by_roles(tmp_path: Path) -> None:
    hub, made = _hub(tmp_path)
    async with hub:
        bound = hub.bind({"student": "local:a", "critic": "local:a", "teacher": "openai:x"})
        assert hub.get("local:a") is made["local:a"]
        assert set(made) == {"local:a", "openai:x"}
        assert bound["student"].name == "local:a"
        assert isinstance(bound["student"], Backend)
        await bound["student"].chat(_req())
        await bound["critic"].chat(_req())
        assert len(made["local:a"].calls) == 2
    assert all(b.closed for b in made.values())
    with pytest.raises(UsageError, match="closed"):
        hub.get("local:a")


async def test_usage_summed_per_role_and_total(tmp_path: Path) -> None:
    hub, _ = _hub(tmp_path, use_cache={})
    async with hub:
        bound = hub.bind({"student": "local:a", "teacher": "local:b"})
        for _ in range(3):
            await bound["student"].chat(_req())
        await bound["teacher"].chat(_req())
        usage = hub.usage
        assert usage["student"] == Usage(300, 60, 3, 0.0)
        assert usage["teacher"] == Usage(100, 20, 1, 0.0)
        assert hub.total_usage.total_tokens == 480
        report = hub.usage_report()
        assert report["budget"]["spent_tokens"] == 480
        assert report["roles"]["student"]["calls"] == 3


async def test_prices_give_usd(tmp_path: Path) -> None:
    hub, _ = _hub(tmp_path, prices={"openai:my-model": Price(input=1.0, output=10.0)})
    async with hub:
        bound = hub.bind({"teacher": "openai:my-model-2025", "student": "local:a"})
        response = await bound["teacher"].chat(_req())
        await bound["student"].chat(_req())
        assert response.usage.usd == pytest.approx((100 * 1.0 + 20 * 10.0) / 1e6)
        assert hub.usage["teacher"].usd == pytest.approx(3e-4)
        assert hub.usage["student"].usd == 0.0


def test_price_table_defaults_and_longest_prefix(tmp_path: Path) -> None:
    table = PriceTable.default()
    mini = table.lookup("openai:gpt-4o-mini-2024-07-18")
    assert mini == Price(input=0.15, output=0.60)
    assert table.lookup("openai:gpt-4o") == Price(input=2.5, output=10.0)
    assert table.lookup("local:smollm2-135m") == Price(input=0, output=0)
    assert table.lookup("openai:unknown-model") is None
    file = tmp_path / "prices.yaml"
    file.write_text('"openai:gpt-4o": {input: 1, output: 2}\n', encoding="utf-8")
    settings = ModelSettings(
        prices_file=file, prices={"openai:unknown-model": Price(input=3, output=4)}
    )
    merged = PriceTable.from_settings(settings)
    assert merged.lookup("openai:gpt-4o") == Price(input=1, output=2)
    assert merged.lookup("openai:unknown-model") == Price(input=3, output=4)


def test_bad_price_file_is_a_usage_error(tmp_path: Path) -> None:
    file = tmp_path / "prices.yaml"
    file.write_text('"openai:x": {input: -1, output: 2}\n', encoding="utf-8")
    with pytest.raises(UsageError, match="bad price for 'openai:x'"):
        load_prices_file(file)
    with pytest.raises(UsageError, match="cannot read price file"):
        load_prices_file(tmp_path / "missing.yaml")


async def test_usd_budget_needs_prices(tmp_path: Path) -> None:
    hub, _ = _hub(tmp_path, budget_usd=1.0)
    async with hub:
        with pytest.raises(UsageError, match="no price"):
            hub.bind({"teacher": "openai:unknown-model"})
        hub.bind({"student": "local:a"})  # free models are fine


async def test_token_budget_raises_before_the_call(tmp_path: Path) -> None:
    # Each call reserves estimate(prompt) (8 here) + max_tokens; it then uses 100 + 20 tokens.
    hub, made = _hub(tmp_path, budget_tokens=390)
    async with hub:
        student = hub.bind({"student": "local:a"})["student"]
        request = _req("q", max_tokens=150)
        await student.chat(request)
        await student.chat(request)
        assert hub.budget.spent_tokens == 240
        with pytest.raises(BudgetExceeded, match="token budget exceeded") as info:
            await student.chat(request)
        assert len(made["local:a"].calls) == 2  # the third call was never made
        assert info.value.spent == {"tokens": 240, "usd": 0.0}
        snapshot = hub.budget.snapshot()
        assert snapshot["spent_tokens"] == 240 and snapshot["reserved_tokens"] == 0
        assert hub.usage["student"].calls == 2
        await student.chat(_req("q", max_tokens=100))  # a smaller call still fits


async def test_usd_budget_raises_before_the_call(tmp_path: Path) -> None:
    hub, made = _hub(tmp_path, budget_usd=0.001, prices={"openai:m": Price(input=1.0, output=10.0)})
    async with hub:
        teacher = hub.bind({"teacher": "openai:m"})["teacher"]
        with pytest.raises(BudgetExceeded, match="USD budget exceeded"):
            await teacher.chat(_req("q", max_tokens=200))  # worst case $0.002 > $0.001
        assert made["openai:m"].calls == []
        await teacher.chat(_req("q", max_tokens=50))
        assert hub.budget.spent_usd == pytest.approx(3e-4)


async def test_failed_call_releases_its_reservation(tmp_path: Path) -> None:
    hub, made = _hub(tmp_path, budget_tokens=1000)
    async with hub:
        student = hub.bind({"student": "local:a"})["student"]
        made["local:a"].fail_next = True
        with pytest.raises(BackendError):
            await student.chat(_req())
        snap = hub.budget.snapshot()
        assert (snap["spent_tokens"], snap["reserved_tokens"]) == (0, 0)
        assert hub.usage == {}


async def test_concurrent_calls_cannot_overspend_together(tmp_path: Path) -> None:
    hub, made = _hub(tmp_path, budget_tokens=500)
    async with hub:
        student = hub.bind({"student": "local:a"})["student"]
        made["local:a"].gate = gate = asyncio.Event()
        request = _req("q", max_tokens=200)  # reserves ~206 tokens each
        first = asyncio.create_task(student.chat(request))
        second = asyncio.create_task(student.chat(request))
        await asyncio.sleep(0)
        assert hub.budget.reserved_tokens > 400
        with pytest.raises(BudgetExceeded, match="in flight"):
            await student.chat(request)
        gate.set()
        await asyncio.gather(first, second)
        assert hub.budget.snapshot()["reserved_tokens"] == 0
        assert hub.budget.spent_tokens == 240


def test_budget_reserve_commit_release() -> None:
    budget = Budget(max_tokens=100, max_usd=None)
    r1 = budget.reserve(60, 0.0)
    with pytest.raises(BudgetExceeded):
        budget.reserve(50, 0.0)
    assert budget.reserved_tokens == 60  # a refused reservation changes nothing
    budget.commit(r1, 30, 0.0)
    r2 = budget.reserve(70, 0.0)
    budget.release(r2)
    assert (budget.spent_tokens, budget.reserved_tokens) == (30, 0)
    assert Budget().limited is False and budget.limited is True


async def test_teacher_cached_by_default_and_reruns_reproduce(tmp_path: Path) -> None:
    hub, made = _hub(tmp_path)
    async with hub:
        bound = hub.bind({"teacher": "openai:t", "student": "local:s"})
        samples = [await bound["teacher"].chat(_req(sample_index=i)) for i in range(3)]
        assert [s.text for s in samples] == ["answer 1", "answer 2", "answer 3"]  # differ
        again = [await bound["teacher"].chat(_req(sample_index=i)) for i in range(3)]
        assert [a.text for a in again] == [s.text for s in samples]
        assert all(a.cached for a in again) and not any(s.cached for s in samples)
        assert len(made["openai:t"].calls) == 3
        await bound["student"].chat(_req())
        await bound["student"].chat(_req())
        assert len(made["local:s"].calls) == 2  # the student is not cached by default
        report = hub.usage_report()["roles"]
        assert report["teacher"]["cached_calls"] == 3 and report["teacher"]["calls"] == 3
    # A new hub (a rerun) reads the same SQLite file.
    hub2, made2 = _hub(tmp_path)
    async with hub2:
        teacher = hub2.bind({"teacher": "openai:t"})["teacher"]
        rerun = await teacher.chat(_req(sample_index=1))
        assert rerun.text == "answer 2" and rerun.cached
        assert made2["openai:t"].calls == []


async def test_cache_switchable_per_role(tmp_path: Path) -> None:
    hub, made = _hub(tmp_path, use_cache={"teacher": False, "student": True})
    async with hub:
        bound = hub.bind({"teacher": "openai:t", "student": "local:s"})
        assert not bound["teacher"].cached  # type: ignore[attr-defined]
        for _ in range(2):
            await bound["teacher"].chat(_req())
            await bound["student"].chat(_req())
        assert len(made["openai:t"].calls) == 2
        assert len(made["local:s"].calls) == 1


async def test_cache_hits_do_not_spend_budget(tmp_path: Path) -> None:
    hub, made = _hub(tmp_path, budget_tokens=300)
    async with hub:
        teacher = hub.bind({"teacher": "openai:t"})["teacher"]
        await teacher.chat(_req(max_tokens=100))
        for _ in range(5):
            await teacher.chat(_req(max_tokens=100))
        assert hub.budget.spent_tokens == 120
        assert len(made["openai:t"].calls) == 1


def test_cache_key_covers_model_parameters_and_sample_index(tmp_path: Path) -> None:
    base = _req()
    keys = {
        cache_key("m", base),
        cache_key("other", base),
        cache_key("m", _req(sample_index=1)),
        cache_key("m", _req(temperature=0.5)),
        cache_key("m", _req(json_schema={"type": "object"})),
        cache_key("m", _req("other question")),
    }
    assert len(keys) == 6
    assert cache_key("m", _req()) == cache_key("m", base)
    cache = RequestCache(tmp_path / "c" / "r.sqlite")
    assert cache.get("nope") is None
    cache.put("k", ChatResponse(text="t", usage=Usage(1, 2, 1, 0.5), model="m"))
    hit = cache.get("k")
    assert hit is not None and hit.cached and hit.usage == Usage(1, 2, 1, 0.5)
    assert len(cache) == 1 and cache.clear() == 1 and len(cache) == 0
    cache.close()


async def test_bind_accepts_backend_objects(tmp_path: Path) -> None:
    hub, _ = _hub(tmp_path)
    fake = CountingBackend("fake:x")
    async with hub:
        bound = hub.bind({"student": fake})
        await bound["student"].chat(_req())
        assert hub.usage["student"].calls == 1
    assert not fake.closed  # the hub only closes what it created


def test_cache_dir_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SGDE_CACHE_DIR", str(tmp_path / "envcache"))
    monkeypatch.setenv("SGDE_MODELS_DIR", str(tmp_path / "envmodels"))
    settings = ModelSettings()
    assert settings.resolved_cache_dir() == tmp_path / "envcache"
    assert settings.resolved_models_dir() == tmp_path / "envmodels"
    assert settings.caches_role("teacher") and not settings.caches_role("student")
