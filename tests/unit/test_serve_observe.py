"""OpenTelemetry spans per run and node (GenAI conventions), and observers never fail a run."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from tests.unit._serve_fakes import duck_plan, student

from sgde.errors import BackendError, UsageError
from sgde.runtime.executor import Executor
from sgde.runtime.observe import RunInfo
from sgde.serve.telemetry import OtelObserver, tracer_from_option
from sgde.testing import InProcessCodeRunner


def _spans(backend: Any) -> tuple[Any, list[Any]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    executor = Executor(
        {"student": backend},
        sandbox=InProcessCodeRunner(),
        observer=OtelObserver(provider.get_tracer("test")),
    )
    return executor, exporter


async def test_run_and_node_spans_follow_the_genai_conventions() -> None:
    executor, exporter = _spans(student())
    result = await executor.run(duck_plan(), {"question": "16 eggs"})
    assert result.ok
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {
        "invoke_workflow duck-eggs",
        "chat function:student",
        "execute_tool compute",
    }
    run = spans["invoke_workflow duck-eggs"]
    chat = spans["chat function:student"]
    tool = spans["execute_tool compute"]
    assert run.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert run.attributes["sgde.plan.version"] == result.trace.plan_hash
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.provider.name"] == "function"
    assert chat.attributes["gen_ai.request.model"] == "student"
    usage = result.trace.nodes[0].usage
    assert chat.attributes["gen_ai.usage.input_tokens"] == usage.prompt_tokens > 0
    assert chat.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens > 0
    assert tool.attributes["gen_ai.tool.name"] == "compute"
    assert chat.parent.span_id == run.context.span_id == tool.parent.span_id
    assert run.attributes["gen_ai.usage.input_tokens"] == result.trace.usage.prompt_tokens


async def test_failed_node_span_has_error_status_and_type() -> None:
    def down(request: Any) -> dict[str, int]:
        raise BackendError("refused", provider="openai-compatible")

    executor, exporter = _spans(student(down))
    result = await executor.run(duck_plan(), {"question": "x"})
    assert not result.ok
    spans = {s.name: s for s in exporter.get_finished_spans()}
    chat = spans["chat function:student"]
    assert chat.status.status_code == StatusCode.ERROR
    assert chat.attributes["error.type"] == "BackendError"
    assert spans["invoke_workflow duck-eggs"].status.status_code == StatusCode.ERROR


class _Broken:
    def on_run_start(self, run: RunInfo) -> None:
        raise RuntimeError("telemetry bug")

    on_node_start = on_node_end = on_run_end = on_run_start  # type: ignore[assignment]


async def test_a_failing_observer_never_fails_the_run(caplog: pytest.LogCaptureFixture) -> None:
    executor = Executor(
        {"student": student()},
        sandbox=InProcessCodeRunner(),
        observer=_Broken(),  # type: ignore[arg-type]
    )
    result = await executor.run(duck_plan(), {"question": "4 eggs"})
    assert result.ok and result.outputs == {"answer": 8}
    assert "telemetry bug" in caplog.text


def test_tracer_options() -> None:
    assert tracer_from_option("none") is None
    _tracer, provider = tracer_from_option("console")  # type: ignore[misc]
    provider.shutdown()
    with pytest.raises(UsageError, match="unknown --otel"):
        tracer_from_option("jaeger")
