"""OpenTelemetry spans per plan run and per node, after the GenAI semantic conventions.

* a run: span ``invoke_workflow {plan}`` (``gen_ai.operation.name = invoke_workflow``) with
  the plan name and version, total tokens and latency;
* an llm or consensus node: span ``chat {model}`` (kind CLIENT) with ``gen_ai.operation.name
  = chat``, ``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.usage.input_tokens``,
  ``gen_ai.usage.output_tokens`` and, for consensus, ``gen_ai.request.choice.count``;
* a code node: span ``execute_tool {node}`` (``gen_ai.tool.name``, ``gen_ai.tool.type =
  function``);
* failures: span status ERROR and ``error.type`` (the exception type, e.g.
  ``NodeTimeoutError``).

Nothing is exported unless an exporter is configured (:func:`tracer_from_option`); the
observer only needs ``opentelemetry-api``, the exporters need ``opentelemetry-sdk``
(``pip install "sgde[otel]"``).
"""

from __future__ import annotations

import threading
from typing import Any

from sgde.errors import UsageError
from sgde.runtime.executor import RunResult
from sgde.runtime.observe import RunInfo
from sgde.runtime.trace import NodeTrace

__all__ = ["OtelObserver", "tracer_from_option"]

OTEL_OPTIONS = ("none", "console", "otlp")


class OtelObserver:
    """Turns executor events into spans of ``tracer`` (an OpenTelemetry ``Tracer``).

    A run's span is a child of the span current when the run starts (e.g. an HTTP server
    span); node spans are children of the run's span.
    """

    def __init__(self, tracer: Any) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._tracer = tracer
        self._runs: dict[str, Any] = {}
        self._nodes: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def on_run_start(self, run: RunInfo) -> None:
        span = self._tracer.start_span(
            f"invoke_workflow {run.plan_name}",
            attributes={
                "gen_ai.operation.name": "invoke_workflow",
                "gen_ai.workflow.name": run.plan_name,
                "sgde.plan.name": run.plan_name,
                "sgde.plan.version": run.plan_hash,
                "sgde.run.id": run.run_id,
                "sgde.run.seed": run.seed,
            },
        )
        with self._lock:
            self._runs[run.run_id] = span

    def on_node_start(self, run: RunInfo, node_id: str, kind: str) -> None:
        with self._lock:
            parent = self._runs.get(run.run_id)
        context = self._trace.set_span_in_context(parent) if parent is not None else None
        if kind == "code":
            name, attrs = (
                f"execute_tool {node_id}",
                {
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": node_id,
                    "gen_ai.tool.type": "function",
                },
            )
            span_kind = self._trace.SpanKind.INTERNAL
        else:
            name, attrs = f"chat {node_id}", {"gen_ai.operation.name": "chat"}
            span_kind = self._trace.SpanKind.CLIENT
        attrs.update({"sgde.node.id": node_id, "sgde.node.kind": kind})
        span = self._tracer.start_span(name, context=context, kind=span_kind, attributes=attrs)
        with self._lock:
            self._nodes[(run.run_id, node_id)] = span

    def on_node_end(self, run: RunInfo, trace: NodeTrace) -> None:
        with self._lock:
            span = self._nodes.pop((run.run_id, trace.node_id), None)
        if span is None:
            return
        if trace.model:
            provider, _, model = trace.model.partition(":")
            span.update_name(f"chat {trace.model}")
            span.set_attribute("gen_ai.provider.name", provider)
            span.set_attribute("gen_ai.request.model", model or trace.model)
            span.set_attribute("gen_ai.usage.input_tokens", trace.usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", trace.usage.completion_tokens)
            if trace.role:
                span.set_attribute("sgde.model.role", trace.role)
            if trace.samples:
                span.set_attribute("gen_ai.request.choice.count", len(trace.samples))
        span.set_attribute("sgde.node.latency_s", trace.latency_s)
        span.set_attribute("sgde.node.attempts", trace.attempts)
        if trace.status == "error":
            error = trace.error or {}
            span.set_attribute("error.type", str(error.get("type", "error")))
            span.set_status(
                self._trace.Status(
                    self._trace.StatusCode.ERROR, str(error.get("message", ""))[:500]
                )
            )
        span.end()

    def on_run_end(
        self, run: RunInfo, result: RunResult | None, error: BaseException | None
    ) -> None:
        with self._lock:
            span = self._runs.pop(run.run_id, None)
            dangling = [k for k in self._nodes if k[0] == run.run_id]
            node_spans = [self._nodes.pop(k) for k in dangling]
        for node_span in node_spans:  # cancelled (request timeout) or stopped by the budget
            node_span.set_attribute("error.type", type(error).__name__ if error else "cancelled")
            node_span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, "interrupted"))
            node_span.end()
        if span is None:
            return
        if result is not None:
            usage = result.trace.usage
            span.set_attribute("gen_ai.usage.input_tokens", usage.prompt_tokens)
            span.set_attribute("gen_ai.usage.output_tokens", usage.completion_tokens)
            span.set_attribute("sgde.run.latency_s", result.trace.latency_s)
            if not result.ok:
                span.set_attribute("error.type", "plan_failed")
                span.set_status(
                    self._trace.Status(self._trace.StatusCode.ERROR, (result.error or "")[:500])
                )
        else:
            kind = type(error).__name__ if error is not None else "cancelled"
            span.set_attribute("error.type", "timeout" if kind == "CancelledError" else kind)
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, kind))
        span.end()


def tracer_from_option(option: str, *, service_name: str = "sgde") -> tuple[Any, Any] | None:
    """A tracer exporting spans as ``option`` says, and its provider (to shut it down).

    Args:
        option: ``none`` (no tracing), ``console`` (spans printed to stdout) or ``otlp``
            (OTLP over HTTP to ``$OTEL_EXPORTER_OTLP_ENDPOINT``, default localhost:4318;
            needs ``opentelemetry-exporter-otlp-proto-http``).
        service_name: The ``service.name`` resource attribute.

    Returns:
        ``(tracer, provider)``, or ``None`` for ``none``.

    Raises:
        UsageError: An unknown option or a missing package (names the pip install).
    """
    if option == "none":
        return None
    if option not in OTEL_OPTIONS:
        raise UsageError(f"unknown --otel {option!r}", hint="use one of " + ", ".join(OTEL_OPTIONS))
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    except ImportError:
        raise UsageError(
            "--otel needs opentelemetry-sdk, which is not installed",
            hint='pip install "sgde[otel]"',
        ) from None
    exporter: Any
    if option == "console":
        exporter = ConsoleSpanExporter()
    else:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise UsageError(
                "--otel otlp needs the OTLP exporter, which is not installed",
                hint="pip install opentelemetry-exporter-otlp-proto-http",
            ) from None
        exporter = OTLPSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider.get_tracer("sgde.serve"), provider
