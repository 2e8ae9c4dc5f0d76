"""Public fakes: ScriptedBackend, FunctionBackend and InProcessCodeRunner."""

from __future__ import annotations

import pytest

import sgde.testing
from sgde.errors import BackendError, SandboxError, UsageError
from sgde.runtime.backend import Backend, Capabilities, ChatRequest, Message
from sgde.testing import FunctionBackend, InProcessCodeRunner, ScriptedBackend


def _req(text: str, **kwargs: object) -> ChatRequest:
    return ChatRequest(messages=(Message("system", "sys"), Message("user", text)), **kwargs)  # type: ignore[arg-type]


def test_exports_are_complete() -> None:
    assert set(sgde.testing.__all__) == {
        "FunctionBackend",
        "InProcessCodeRunner",
        "Reply",
        "ScriptedBackend",
    }
    for name in sgde.testing.__all__:
        assert hasattr(sgde.testing, name)


async def test_scripted_sequence_replays_in_order_and_records() -> None:
    backend = ScriptedBackend(["one", {"eggs": 2}])
    assert isinstance(backend, Backend)
    first = await backend.chat(_req("a b c"))
    second = await backend.chat(_req("d"))
    assert first.text == "one"
    assert second.text == '{"eggs": 2}'
    assert first.usage.prompt_tokens == 4  # "sys" + 3 words
    assert first.usage.completion_tokens == 1
    assert first.usage.calls == 1
    assert backend.calls == 2
    assert [r.messages[-1].content for r in backend.requests] == ["a b c", "d"]
    assert backend.remaining == 0


async def test_scripted_exhaustion_is_a_clear_error() -> None:
    backend = ScriptedBackend(["only"])
    await backend.chat(_req("x"))
    with pytest.raises(BackendError, match="script exhausted: 1 replies"):
        await backend.chat(_req("y"))


async def test_scripted_exception_reply_is_raised() -> None:
    err = BackendError("overloaded", provider="fake", status=503, retryable=True)
    backend = ScriptedBackend([err, "ok"])
    with pytest.raises(BackendError, match="overloaded"):
        await backend.chat(_req("x"))
    assert (await backend.chat(_req("x"))).text == "ok"


async def test_scripted_mapping_matches_prompt_substrings() -> None:
    backend = ScriptedBackend({"ducks": ["a", "b"], "geese": {"n": 1}})
    assert (await backend.chat(_req("how many ducks?"))).text == "a"
    assert (await backend.chat(_req("ducks again"))).text == "b"
    assert (await backend.chat(_req("ducks, third time"))).text == "b"  # last one repeats
    assert (await backend.chat(_req("geese"))).text == '{"n": 1}'
    with pytest.raises(BackendError, match="no scripted reply matches"):
        await backend.chat(_req("swans"))
    assert backend.remaining is None


async def test_scripted_callable_and_bad_script() -> None:
    backend = ScriptedBackend(lambda req: f"seed={req.seed}")
    assert (await backend.chat(_req("x", seed=5))).text == "seed=5"
    with pytest.raises(UsageError):
        ScriptedBackend("not a list")  # type: ignore[arg-type]


async def test_function_backend_sync_and_async() -> None:
    caps = Capabilities(json_schema=True)
    backend = FunctionBackend(lambda req: {"t": req.temperature}, capabilities=caps, name="fn:x")
    assert backend.name == "fn:x"
    assert backend.capabilities.json_schema
    assert (await backend.chat(_req("q", temperature=0.5))).text == '{"t": 0.5}'

    async def reply(req: ChatRequest) -> str:
        return req.messages[-1].content.upper()

    backend2 = FunctionBackend(reply)
    assert (await backend2.chat(_req("hi"))).text == "HI"
    await backend2.aclose()
    assert backend2.closed


async def test_function_backend_rejects_bad_reply_types() -> None:
    backend = FunctionBackend(lambda req: 42)  # type: ignore[arg-type,return-value]
    with pytest.raises(UsageError, match="str or a dict"):
        await backend.chat(_req("x"))


async def test_in_process_code_runner_keeps_the_sandbox_contract() -> None:
    runner = InProcessCodeRunner()
    assert await runner.call("def run(a, b):\n    return {'s': a + b}\n", {"a": 1, "b": 2}) == {
        "s": 3
    }
    with pytest.raises(SandboxError) as refused:
        await runner.call("import os\ndef run():\n    return os.getcwd()\n", {})
    assert refused.value.rule == "policy:import-not-allowed"
    with pytest.raises(SandboxError, match="ZeroDivisionError") as failed:
        await runner.call("def run():\n    return 1 / 0\n", {})
    assert failed.value.rule == "runtime-error"
    with pytest.raises(SandboxError) as not_json:
        await runner.call("def run():\n    return {1, 2}\n", {})
    assert not_json.value.rule == "not-json"
    assert runner.kwargs == [{"a": 1, "b": 2}, {}, {}, {}]


async def test_in_process_code_runner_raises_scripted_errors_first() -> None:
    runner = InProcessCodeRunner(errors=[SandboxError("worker died", rule="timeout")])
    with pytest.raises(SandboxError, match="worker died"):
        await runner.call("def run():\n    return 1\n", {})
    assert await runner.call("def run():\n    return 1\n", {}) == 1
    assert len(runner.calls) == 2
