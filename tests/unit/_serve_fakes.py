"""Shared fakes of the serve tests: plans, a fake student, a service with an in-process sandbox."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from sgde.models import ModelHub
from sgde.plan import Plan
from sgde.planfile import loads_plan
from sgde.runtime.backend import ChatRequest
from sgde.runtime.calls import CodeRunner
from sgde.serve.registry import Registry
from sgde.serve.service import PlanService
from sgde.serve.settings import ServeSettings
from sgde.testing import FunctionBackend, InProcessCodeRunner

DUCK = """
schema_version: 1
name: duck-eggs
inputs: {question: string}
outputs: {answer: compute.answer}
nodes:
  - id: extract
    kind: llm
    inputs: {question: input.question}
    prompt: "{{ question }}"
    output_schema: {type: object, properties: {eggs: {type: integer}}, required: [eggs]}
  - id: compute
    kind: code
    inputs: {eggs: extract.eggs}
    code: |
      def run(eggs):
          return {"answer": eggs * 2}
"""

AB = """
schema_version: 1
name: ab
inputs: {n: integer}
outputs: {value: ask.value}
nodes:
  - id: ask
    kind: llm
    inputs: {n: input.n}
    prompt: "VARIANT {{ n }}"
    output_schema: {type: object, properties: {value: {type: integer}}, required: [value]}
"""


def duck_plan() -> Plan:
    return loads_plan(DUCK)


def ab_plan(variant: str) -> Plan:
    return loads_plan(AB.replace("VARIANT", variant))


def first_number(request: ChatRequest) -> dict[str, Any]:
    """The fake student: copies the first number of the prompt."""
    found = re.findall(r"\d+", request.messages[-1].content)
    return {"eggs": int(found[0]) if found else 0, "value": int(found[0]) if found else 0}


def student(
    fn: Callable[[ChatRequest], Any] = first_number, delay_s: float = 0.0
) -> FunctionBackend:
    return FunctionBackend(fn, name="function:student", delay_s=delay_s)


@contextlib.asynccontextmanager
async def _inprocess() -> AsyncIterator[CodeRunner]:
    yield InProcessCodeRunner()


def make_service(
    plans: list[Plan],
    *,
    backend: FunctionBackend | None = None,
    registry: Registry | None = None,
    **settings: Any,
) -> PlanService:
    settings.setdefault("watch_interval_s", 0)
    return PlanService(
        registry or _loaded(Registry(plans=plans)),
        ServeSettings(**settings),
        hub=ModelHub(),
        models={"student": backend or student()},
        sandbox_factory=_inprocess,
    )


def _loaded(registry: Registry) -> Registry:
    registry.load()
    return registry
