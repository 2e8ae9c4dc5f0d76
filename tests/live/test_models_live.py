"""Live calls to OpenAI and Anthropic. Off by default: ``pytest -m live`` with the keys set."""

from __future__ import annotations

import json
import os

import pytest

from sgde.models import ModelHub, ModelSettings
from sgde.runtime.backend import ChatRequest, Message

pytestmark = pytest.mark.live

SCHEMA = {
    "type": "object",
    "properties": {"eggs_per_day": {"type": "integer"}, "price_per_egg": {"type": "number"}},
    "required": ["eggs_per_day", "price_per_egg"],
    "additionalProperties": False,
}
REQUEST = ChatRequest(
    messages=(
        Message("system", "You copy numbers out of math word problems into JSON."),
        Message(
            "user",
            "Janet's ducks lay 16 eggs per day. She sells them for $2 each. "
            "Give eggs_per_day and price_per_egg.",
        ),
    ),
    json_schema=SCHEMA,
    max_tokens=100,
)


@pytest.fixture(autouse=True)
def _allow_real_models(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SGDE_BLOCK_REAL_MODELS", raising=False)


@pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="needs OPENAI_API_KEY")
async def test_openai_structured_output_and_usage() -> None:
    model = os.environ.get("SGDE_LIVE_OPENAI_MODEL", "gpt-4o-mini")
    async with ModelHub(ModelSettings(budget_usd=0.05, use_cache={})) as hub:
        teacher = hub.bind({"teacher": f"openai:{model}"})["teacher"]
        response = await teacher.chat(REQUEST)
        assert json.loads(response.text) == {"eggs_per_day": 16, "price_per_egg": 2}
        assert response.usage.prompt_tokens > 0 and response.usage.usd > 0
        assert hub.usage["teacher"].calls == 1


@pytest.mark.skipif(not os.environ.get("ANTHROPIC_API_KEY"), reason="needs ANTHROPIC_API_KEY")
async def test_anthropic_structured_output_via_tool() -> None:
    pytest.importorskip("anthropic")
    model = os.environ.get("SGDE_LIVE_ANTHROPIC_MODEL", "claude-haiku-4-5")
    async with ModelHub(ModelSettings(budget_usd=0.05, use_cache={})) as hub:
        teacher = hub.bind({"teacher": f"anthropic:{model}"})["teacher"]
        response = await teacher.chat(REQUEST)
        assert json.loads(response.text) == {"eggs_per_day": 16, "price_per_egg": 2}
        assert response.usage.prompt_tokens > 0 and response.usage.usd > 0
