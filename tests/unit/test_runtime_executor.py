"""The executor: scheduling, nodes, consensus, failures, retries, determinism, batches."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from sgde.errors import BackendError, BudgetExceeded, SandboxError, UsageError
from sgde.plan import Plan
from sgde.planfile import loads_plan
from sgde.runtime import Executor, ExecutorSettings, RunResult, RunTrace, required_roles
from sgde.runtime.backend import Capabilities, ChatRequest
from sgde.testing import FunctionBackend, InProcessCodeRunner, ScriptedBackend

DUCK = """
schema_version: 1
name: duck-eggs
inputs: {question: string}
outputs: {answer: compute.answer}
nodes:
  - id: extract
    kind: llm
    model: student
    inputs: {question: input.question}
    system: You extract quantities.
    prompt: "Problem: {{ question }}"
    output_schema:
      type: object
      properties: {eggs: {type: integer}, eaten: {type: integer}}
      required: [eggs, eaten]
  - id: extract_vote
    kind: consensus
    of: extract
    n: 5
    temperature: 0.7
  - id: compute
    kind: code
    inputs: {eggs: extract_vote.eggs, eaten: extract_vote.eaten}
    code: |
      def run(eggs, eaten):
          return {"answer": eggs - eaten}
"""

PARALLEL = """
schema_version: 1
name: parallel
inputs: {text: string}
outputs: {a: left.text, b: right.text, joined: join.joined}
nodes:
  - id: left
    kind: llm
    model: student
    inputs: {text: input.text}
    prompt: "left {{ text }}"
  - id: right
    kind: llm
    model: student
    inputs: {text: input.text}
    prompt: "right {{ text }}"
  - id: join
    kind: code
    inputs: {a: left.text, b: right.text}
    code: |
      def run(a, b):
          return {"joined": a + "|" + b}
"""

ARITH = """
schema_version: 1
name: arithmetic
inputs: {x: number, y: integer}
outputs: {total: add.total, doubled: double.value}
nodes:
  - id: add
    kind: code
    inputs: {x: input.x, y: input.y}
    code: |
      def run(x, y):
          return {"total": x + y}
  - id: double
    kind: code
    inputs: {t: add.total}
    code: |
      def run(t):
          return {"value": t * 2}
"""


def _plan(text: str) -> Plan:
    return loads_plan(text)


def _llm_plan(extra: str = "", schema: bool = True) -> Plan:
    schema_text = (
        "    output_schema: {type: object, properties: {n: {type: number}}, required: [n]}\n"
        if schema
        else ""
    )
    return _plan(
        "schema_version: 1\nname: single\ninputs: {q: string}\n"
        f"outputs: {{out: ask.{'n' if schema else 'text'}}}\n"
        "nodes:\n  - id: ask\n    kind: llm\n    model: student\n"
        "    inputs: {q: input.q}\n    prompt: 'Q: {{ q }}'\n" + schema_text + extra
    )


def _stable(trace: RunTrace) -> dict[str, Any]:
    data = trace.to_dict()
    for key in ("run_id", "latency_s", "started_at"):
        data.pop(key)
    for node in data["nodes"]:
        node.pop("latency_s")
        node.pop("started_s")
        for sample in node["samples"]:
            sample.pop("latency_s")
    return data


async def test_code_only_plan_runs_in_dependency_order() -> None:
    runner = InProcessCodeRunner()
    result = await Executor({}, sandbox=runner).run(_plan(ARITH), {"x": "1.5", "y": "2"})
    assert result.ok, result.error
    assert result.outputs == {"total": 3.5, "doubled": 7.0}
    assert runner.kwargs == [{"x": 1.5, "y": 2}, {"t": 3.5}]
    assert [n.node_id for n in result.trace.nodes] == ["add", "double"]
    assert result.trace.inputs == {"x": 1.5, "y": 2}
    assert required_roles(_plan(ARITH)) == set()


async def test_duck_eggs_consensus_votes_and_traces_every_sample() -> None:
    replies = [
        {"eggs": 16, "eaten": 3},
        '```json\n{"eggs": "16", "eaten": 4}\n```',
        "I cannot answer",
        {"eggs": 15, "eaten": 3},
        "{'eggs': 16.0, 'eaten': 3,}",
    ]
    backend = FunctionBackend(lambda req: replies[req.sample_index])
    result = await Executor({"student": backend}, sandbox=InProcessCodeRunner()).run(
        _plan(DUCK), {"question": "Janet's ducks lay 16 eggs; she eats 3."}, seed=7
    )
    assert result.ok, result.error
    assert result.outputs == {"answer": 13}
    assert len(backend.requests) == 5
    assert sorted(r.sample_index for r in backend.requests) == [0, 1, 2, 3, 4]
    assert {r.temperature for r in backend.requests} == {0.7}
    assert len({r.seed for r in backend.requests}) == 5
    node = result.trace.node("extract_vote")
    assert node is not None
    assert node.kind == "consensus" and node.wrapped == "extract" and node.role == "student"
    assert result.trace.node("extract") is None  # wrapped nodes do not run on their own
    assert [s.output is not None for s in node.samples] == [True, True, False, True, True]
    assert node.samples[2].error is not None
    assert node.samples[2].error["type"] == "OutputParseError"
    assert node.vote is not None
    assert node.vote["valid"] == 4
    assert node.vote["tally"]["eggs"] == [["16", 3], ["15", 1]]
    assert node.vote["tally"]["eaten"] == [["3", 3], ["4", 1]]
    assert node.output == {"eggs": 16, "eaten": 3}
    assert node.messages[0] == {"role": "system", "content": "You extract quantities."}
    assert node.messages[1]["content"].startswith("Problem: Janet's ducks lay 16 eggs")
    assert node.usage.calls == 5
    assert result.trace.usage_by_role["student"].calls == 5
    compute = result.trace.node("compute")
    assert compute is not None and compute.inputs == {"eggs": 16, "eaten": 3}


async def test_consensus_with_no_valid_sample_fails_and_skips_dependants() -> None:
    backend = ScriptedBackend(["nope"] * 5)
    result = await Executor({"student": backend}, sandbox=InProcessCodeRunner()).run(
        _plan(DUCK), {"question": "q"}
    )
    assert not result.ok
    assert result.outputs == {}
    assert result.error is not None
    assert "none of the 5 samples" in result.error
    assert "1 dependent node(s) skipped" in result.error
    vote_trace = result.trace.node("extract_vote")
    compute = result.trace.node("compute")
    assert vote_trace is not None and vote_trace.status == "error"
    assert compute is not None and compute.status == "skipped"
    assert compute.error is not None and "extract_vote" in compute.error["message"]


async def test_independent_nodes_run_concurrently() -> None:
    backend = FunctionBackend(lambda req: req.messages[-1].content.upper(), delay_s=0.2)
    executor = Executor({"student": backend}, sandbox=InProcessCodeRunner())
    started = time.perf_counter()
    result = await executor.run(_plan(PARALLEL), {"text": "x"})
    elapsed = time.perf_counter() - started
    assert result.ok, result.error
    assert result.outputs == {"a": "LEFT X", "b": "RIGHT X", "joined": "LEFT X|RIGHT X"}
    assert elapsed < 0.38, elapsed

    serial = Executor(
        {"student": backend},
        sandbox=InProcessCodeRunner(),
        settings=ExecutorSettings(max_concurrency=1),
    )
    started = time.perf_counter()
    await serial.run(_plan(PARALLEL), {"text": "x"})
    assert time.perf_counter() - started >= 0.4


async def test_concurrency_bound_is_respected_across_consensus_samples() -> None:
    in_flight = 0
    peak = 0

    async def reply(req: ChatRequest) -> dict[str, int]:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return {"eggs": 1, "eaten": 0}

    executor = Executor(
        {"student": FunctionBackend(reply)},
        sandbox=InProcessCodeRunner(),
        settings=ExecutorSettings(max_concurrency=2),
    )
    result = await executor.run(_plan(DUCK), {"question": "q"})
    assert result.ok
    assert peak == 2


async def test_parse_failure_marks_run_not_ok_with_raw_output() -> None:
    backend = ScriptedBackend(["sixteen"])
    result = await Executor({"student": backend}, sandbox=None).run(_llm_plan(), {"q": "x"})
    assert not result.ok
    node = result.trace.node("ask")
    assert node is not None and node.status == "error"
    assert node.raw_output == "sixteen"
    assert node.error is not None and node.error["type"] == "OutputParseError"
    assert result.error is not None and result.error.startswith("node 'ask'")


async def test_parse_failure_is_retried_with_a_new_seed() -> None:
    backend = ScriptedBackend(["sixteen", '{"n": 16}'])
    plan = _llm_plan("    retries: 2\n")
    executor = Executor(
        {"student": backend}, sandbox=None, settings=ExecutorSettings(retry_backoff_s=0)
    )
    result = await executor.run(plan, {"q": "x"})
    assert result.ok
    assert result.outputs == {"out": 16}
    node = result.trace.node("ask")
    assert node is not None and node.attempts == 2
    assert backend.requests[0].seed != backend.requests[1].seed
    assert node.usage.calls == 2


async def test_retryable_backend_errors_are_retried_and_others_are_not() -> None:
    flaky = BackendError("busy", provider="fake", status=503, retryable=True)
    fatal = BackendError("bad key", provider="fake", status=401, retryable=False)
    settings = ExecutorSettings(retry_backoff_s=0)
    plan = _llm_plan("    retries: 3\n")

    backend = ScriptedBackend([flaky, flaky, '{"n": 1}'])
    result = await Executor({"student": backend}, sandbox=None, settings=settings).run(
        plan, {"q": "x"}
    )
    assert result.ok and backend.calls == 3

    backend = ScriptedBackend([fatal, '{"n": 1}'])
    result = await Executor({"student": backend}, sandbox=None, settings=settings).run(
        plan, {"q": "x"}
    )
    assert not result.ok and backend.calls == 1
    node = result.trace.node("ask")
    assert node is not None and node.error is not None
    assert node.error["status"] == 401 and node.attempts == 1


async def test_timeout_is_recorded_per_node() -> None:
    backend = FunctionBackend(lambda req: '{"n": 1}', delay_s=0.5)
    plan = _llm_plan("    timeout_s: 0.05\n")
    result = await Executor({"student": backend}, sandbox=None).run(plan, {"q": "x"})
    assert not result.ok
    node = result.trace.node("ask")
    assert node is not None and node.error is not None
    assert node.error["type"] == "NodeTimeoutError"
    assert "timed out after 0.05 s" in node.error["message"]


async def test_budget_exceeded_stops_the_run() -> None:
    backend = ScriptedBackend([BudgetExceeded("over budget")])
    with pytest.raises(BudgetExceeded):
        await Executor({"student": backend}, sandbox=None).run(_llm_plan(), {"q": "x"})


async def test_unexpected_backend_exception_is_recorded_not_raised() -> None:
    def broken(req: ChatRequest) -> str:
        raise RuntimeError("backend bug")

    result = await Executor({"student": FunctionBackend(broken)}, sandbox=None).run(
        _llm_plan(), {"q": "x"}
    )
    assert not result.ok
    assert result.error == "node 'ask': RuntimeError: backend bug"
    node = result.trace.node("ask")
    assert node is not None and node.error == {"type": "RuntimeError", "message": "backend bug"}


async def test_free_text_node_yields_text_field() -> None:
    backend = ScriptedBackend(["  hello there "])
    result = await Executor({"student": backend}, sandbox=None).run(
        _llm_plan(schema=False), {"q": "x"}
    )
    assert result.outputs == {"out": "  hello there "}
    assert backend.requests[0].json_schema is None
    assert "JSON" not in backend.requests[0].messages[-1].content


@pytest.mark.parametrize(
    ("caps", "sends_schema", "instructs"),
    [
        (Capabilities(json_schema=True), True, False),
        (Capabilities(json_object=True), True, True),
        (Capabilities(), False, True),
    ],
)
async def test_schema_is_sent_or_described_by_capability(
    caps: Capabilities, sends_schema: bool, instructs: bool
) -> None:
    backend = ScriptedBackend(['{"n": 2}'], capabilities=caps)
    result = await Executor({"student": backend}, sandbox=None).run(_llm_plan(), {"q": "x"})
    assert result.ok
    request = backend.requests[0]
    assert (request.json_schema is not None) == sends_schema
    prompt = request.messages[-1].content
    assert prompt.startswith("Q: x")
    assert ('"n": number' in prompt) == instructs
    assert request.temperature == 0.0 and request.sample_index == 0


async def test_fixed_seed_is_deterministic_and_seed_changes_requests() -> None:
    def reply(req: ChatRequest) -> dict[str, int]:
        return {"eggs": 10 + (req.seed or 0) % 3, "eaten": 1}

    async def run(seed: int) -> tuple[RunResult, list[int | None]]:
        backend = FunctionBackend(reply)
        executor = Executor({"student": backend}, sandbox=InProcessCodeRunner())
        result = await executor.run(_plan(DUCK), {"question": "q"}, seed=seed)
        return result, sorted(r.seed for r in backend.requests)  # type: ignore[type-var]

    a, seeds_a = await run(1)
    b, seeds_b = await run(1)
    _, seeds_c = await run(2)
    assert a.outputs == b.outputs
    assert _stable(a.trace) == _stable(b.trace)
    assert seeds_a == seeds_b
    assert seeds_a != seeds_c
    assert a.trace.run_id != b.trace.run_id


async def test_missing_input_and_coercion_errors_are_usage_errors() -> None:
    executor = Executor({}, sandbox=InProcessCodeRunner())
    with pytest.raises(UsageError, match="missing plan input: y") as info:
        await executor.run(_plan(ARITH), {"x": 1})
    assert "x (number), y (integer)" in str(info.value)
    with pytest.raises(UsageError, match="input 'y' must be an integer"):
        await executor.run(_plan(ARITH), {"x": 1, "y": "2.5"})
    with pytest.raises(UsageError, match="input 'x' must be a number"):
        await executor.run(_plan(ARITH), {"x": "many", "y": 1})


async def test_unbound_role_lists_bound_roles_and_hint() -> None:
    executor = Executor({"teacher": ScriptedBackend([])}, sandbox=InProcessCodeRunner())
    with pytest.raises(UsageError) as info:
        await executor.run(_plan(DUCK), {"question": "q"})
    message = str(info.value)
    assert "student" in message and "bound roles: teacher" in message
    assert "--model student=" in message


async def test_code_nodes_need_a_sandbox() -> None:
    with pytest.raises(UsageError, match="no sandbox"):
        await Executor({}, sandbox=None).run(_plan(ARITH), {"x": 1, "y": 2})


async def test_code_node_must_return_a_dict_with_declared_fields() -> None:
    plan = _plan(ARITH.replace('return {"total": x + y}', "return x + y"))
    result = await Executor({}, sandbox=InProcessCodeRunner()).run(plan, {"x": 1, "y": 2})
    assert not result.ok
    assert result.error is not None and "must return a dict" in result.error
    double = result.trace.node("double")
    assert double is not None and double.status == "skipped"


async def test_code_node_retries_transient_sandbox_failures_only() -> None:
    plan = _plan(
        ARITH.replace(
            "    code: |\n      def run(x, y)", "    retries: 1\n    code: |\n      def run(x, y)"
        )
    )
    settings = ExecutorSettings(retry_backoff_s=0)
    runner = InProcessCodeRunner(errors=[SandboxError("worker died", rule="timeout")])
    result = await Executor({}, sandbox=runner, settings=settings).run(plan, {"x": 1, "y": 2})
    assert result.ok, result.error
    add = result.trace.node("add")
    assert add is not None and add.attempts == 2

    runner = InProcessCodeRunner(errors=[SandboxError("ZeroDivisionError", rule="runtime-error")])
    result = await Executor({}, sandbox=runner, settings=settings).run(plan, {"x": 1, "y": 2})
    assert not result.ok
    add = result.trace.node("add")
    assert add is not None and add.attempts == 1
    assert add.error is not None and add.error["rule"] == "runtime-error"


async def test_runtime_template_error_is_recorded_when_validation_is_off() -> None:
    plan = _llm_plan().model_copy()
    node = plan.nodes[0].model_copy(update={"prompt": "{{ nope }}"})
    plan = plan.model_copy(update={"nodes": [node]})
    executor = Executor(
        {"student": ScriptedBackend([])},
        sandbox=None,
        settings=ExecutorSettings(validate_plan=False),
    )
    result = await executor.run(plan, {"q": "x"})
    assert not result.ok
    assert result.error is not None and "undefined variable" in result.error


async def test_run_batch_keeps_row_order_and_reports_each_row() -> None:
    backend = FunctionBackend(
        lambda req: {"n": req.messages[-1].content.splitlines()[0].count("a")}, delay_s=0.01
    )
    seen: list[int] = []
    rows = [{"q": "a" * i, "answer": i} for i in range(1, 8)]
    results = await Executor(
        {"student": backend}, sandbox=None, settings=ExecutorSettings(max_concurrency=3)
    ).run_batch(_llm_plan(), rows, on_result=lambda i, r: seen.append(i))
    assert [r.outputs["out"] for r in results] == list(range(1, 8))
    assert [r.trace.inputs["q"] for r in results] == [row["q"] for row in rows]
    assert sorted(seen) == list(range(7))
    assert all(r.ok for r in results)


async def test_run_batch_checks_every_row_first() -> None:
    backend = ScriptedBackend(['{"n": 1}'] * 3)
    with pytest.raises(UsageError, match="row 2: missing plan input: q"):
        await Executor({"student": backend}, sandbox=None).run_batch(
            _llm_plan(), [{"q": "a"}, {"x": 1}, {"q": "c"}]
        )
    assert backend.calls == 0


async def test_trace_of_a_real_run_roundtrips() -> None:
    backend = FunctionBackend(lambda req: {"eggs": 3, "eaten": 1})
    result = await Executor({"student": backend}, sandbox=InProcessCodeRunner()).run(
        _plan(DUCK), {"question": "q"}
    )
    data = result.trace.to_dict()
    assert RunTrace.from_dict(data).to_dict() == data
    assert data["plan_hash"].startswith("sha256:")
    assert data["plan_name"] == "duck-eggs"


def test_settings_reject_nonsense() -> None:
    with pytest.raises(UsageError):
        ExecutorSettings(max_concurrency=0)
    with pytest.raises(UsageError):
        ExecutorSettings(llm_timeout_s=0)
