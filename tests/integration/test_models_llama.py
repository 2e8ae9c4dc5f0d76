"""Real SmolLM2-135M: embedded through llama-cpp-python, and behind llama_cpp.server.

Run under the model lock on shared machines:
``OMP_WAIT_POLICY=PASSIVE flock /tmp/sgde-model.lock pytest tests/integration/test_models_llama.py``
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from model_servers import start_llama_server

from sgde.errors import ModelNotFoundError
from sgde.models import ModelHub, ModelSettings, OpenAIBackend
from sgde.models.local import model_path
from sgde.planfile import load_plan
from sgde.runtime.backend import ChatRequest, Message
from sgde.runtime.executor import Executor
from sgde.runtime.sandbox import SandboxPool

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
QUESTION = (
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
    "muffins for her friends every day with four. She sells the remainder at the farmers' "
    "market daily for $2 per fresh duck egg. How much in dollars does she make every day at "
    "the farmers' market?"
)
SCHEMA = {
    "type": "object",
    "properties": {
        "eggs_per_day": {"type": "integer"},
        "price_per_egg": {"type": "number"},
    },
    "required": ["eggs_per_day", "price_per_egg"],
}
EXTRACT = ChatRequest(
    messages=(
        Message("system", "You copy numbers out of math word problems into JSON."),
        Message("user", f"Problem: {QUESTION}\n\nFill in eggs_per_day and price_per_egg."),
    ),
    json_schema=SCHEMA,
    max_tokens=64,
)


@pytest.fixture(scope="module")
def smollm2() -> Path:
    pytest.importorskip("llama_cpp", reason='needs llama-cpp-python: pip install "sgde[local]"')
    try:
        return model_path("smollm2-135m")
    except ModelNotFoundError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def llama_server(smollm2: Path) -> Iterator[str]:
    with start_llama_server(smollm2, n_threads=2) as base_url:
        yield base_url


async def test_embedded_schema_constrained_call(smollm2: Path) -> None:
    settings = ModelSettings(n_threads=2, n_ctx=2048)
    async with ModelHub(settings) as hub:
        student = hub.bind({"student": "local:smollm2-135m"})["student"]
        response = await student.chat(EXTRACT)
        data = json.loads(response.text)
        jsonschema.validate(data, SCHEMA)
        assert data["eggs_per_day"] == 16
        assert response.usage.prompt_tokens > 50 and response.usage.completion_tokens > 0
        # Distinct samples share the one loaded model.
        samples = [
            await student.chat(
                ChatRequest(
                    messages=EXTRACT.messages,
                    json_schema=SCHEMA,
                    max_tokens=64,
                    temperature=0.9,
                    seed=1,
                    sample_index=i,
                )
            )
            for i in range(3)
        ]
        for sample in samples:
            jsonschema.validate(json.loads(sample.text), SCHEMA)
        assert hub.usage["student"].calls == 4
        assert hub.get("local:smollm2-135m") is student.backend  # type: ignore[attr-defined]


async def test_plan_end_to_end_through_llama_cpp_server(llama_server: str) -> None:
    plan = load_plan(EXAMPLES / "duck_eggs.yaml")
    settings = ModelSettings(base_url=llama_server, max_retries=2, timeout_s=60)
    async with ModelHub(settings) as hub, SandboxPool(workers=1) as sandbox:
        bindings = hub.bind({"student": "openai-compatible:smollm2"})
        executor = Executor(bindings, sandbox=sandbox)
        result = await executor.run(plan, {"question": QUESTION}, seed=0)
        assert result.ok, result.error
        assert isinstance(result.outputs["answer"], (int, float))
        usage = hub.usage["student"]
        assert usage.calls == 5  # five consensus samples, one HTTP call each
        assert (
            usage.prompt_tokens > 0
            and hub.usage_report()["roles"]["student"]["estimated_calls"] == 0
        )
        backend = hub.get("openai-compatible:smollm2")
        assert isinstance(backend, OpenAIBackend)
        # llama.cpp's server rejects OpenAI's json_schema form; auto mode settled on its own.
        assert backend.structured_output == "json_object_schema"
        # A rerun with the same seed reproduces the samples.
        again = await executor.run(plan, {"question": QUESTION}, seed=0)
        assert again.outputs == result.outputs
