"""Fakes shared by the bench, eval and demo unit tests (no models, no sandbox processes).

The task: "What is A plus B?" with gold A + B. The fake student answers the direct-answer
baseline right only for even A, and the fake SGDe plan (marked ``FAKE-SGDE`` in its system
prompt) always right, so accuracies and paired comparisons are known in advance.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sgde.errors import CompileError
from sgde.evaluation.bench import BenchConfig, BenchDeps
from sgde.models import ModelHub, ModelSettings
from sgde.optimize.events import CompileEvent
from sgde.optimize.report import CompileReport, IterationRecord
from sgde.plan.model import LlmNode, Plan
from sgde.runtime.backend import ChatRequest, Message
from sgde.testing import FunctionBackend

STUDENT = "fake:student"
TEACHER = "fake:teacher"
_NUMBERS = re.compile(r"What is (\d+) plus (\d+)\?")

SGDE_PLAN = Plan(
    name="fake-sgde",
    inputs={"question": "string"},
    outputs={"answer": "solve.answer"},
    nodes=[
        LlmNode(
            id="solve",
            inputs={"question": "input.question"},
            system="FAKE-SGDE: add the two numbers.",
            prompt="{{ question }}",
            output_schema={
                "type": "object",
                "properties": {"answer": {"type": "number"}},
                "required": ["answer"],
            },
        )
    ],
)


def question_numbers(request: ChatRequest) -> tuple[int, int] | None:
    """The two numbers of the question in a request, if any."""
    for message in request.messages:
        match = _NUMBERS.search(message.content)
        if match:
            return int(match.group(1)), int(match.group(2))
    return None


def student_reply(request: ChatRequest) -> dict[str, Any] | str:
    """The fake student's answer (see the module docstring)."""
    numbers = question_numbers(request)
    if numbers is None:
        return {"answer": 0}
    a, b = numbers
    system = request.messages[0].content if request.messages else ""
    if "FAKE-SGDE" in system or a % 2 == 0:
        return {"answer": a + b}
    return {"answer": a + b + 1}


def teacher_reply(request: ChatRequest) -> str:
    """The fake teacher says something short."""
    return "use code"


def fake_synthesise(
    template: Any,
    *,
    n: int,
    seed: int,
    sandbox: Any,
    split: str = "test",
    exclude: Collection[str] = (),
) -> list[dict[str, Any]]:
    """Deterministic addition rows; never yields an excluded question."""
    rng = random.Random(f"{template.id}-{seed}-{split}")
    rows: list[dict[str, Any]] = []
    seen = set(exclude)
    while len(rows) < n:
        a, b = rng.randint(10, 10**6), rng.randint(10, 10**6)
        question = f"What is {a} plus {b}?"
        if question in seen:
            continue
        seen.add(question)
        rows.append(
            {
                "id": f"{template.id}-{split}-{seed}-{len(rows)}",
                "question": question,
                "answer": a + b,
                "template_id": template.id,
                "seed": seed,
                "values": {"a": a, "b": b},
            }
        )
    return rows


@dataclass
class FakeCompiler:
    """Records compile calls and returns :data:`SGDE_PLAN` with a small report."""

    calls: list[dict[str, Any]] = field(default_factory=list)
    fail: bool = False

    async def __call__(self, task: Any, **kwargs: Any) -> Any:
        self.calls.append({"task": task, **kwargs})
        if self.fail:
            raise CompileError("the fake teacher found no plan")
        teacher = kwargs["teacher"]
        await teacher.chat(ChatRequest(messages=(Message("user", "compile this"),)))
        events = kwargs.get("events")
        if events is not None:
            events(CompileEvent(kind="accepted", iteration=1, message="offload", loss=0.0))
        report = CompileReport(
            plan_name="fake-sgde",
            m=len(kwargs["trainset"]),
            initial_loss=2 / 3,
            final_loss=0.0,
            iterations=[
                IterationRecord(
                    iteration=1,
                    loss_before=2 / 3,
                    edit="offload solve",
                    candidate_loss=1 / 3,
                    accepted=True,
                ),
                IterationRecord(
                    iteration=2,
                    loss_before=1 / 3,
                    edit="rewrite",
                    candidate_loss=0.0,
                    accepted=True,
                ),
            ],
            stop_reason="zero training loss",
        )
        return SimpleNamespace(plan=SGDE_PLAN, report=report)


def fake_resolver(name: str, settings: ModelSettings) -> FunctionBackend:
    """Hub resolver: the fake student or teacher by name."""
    if name == TEACHER:
        return FunctionBackend(teacher_reply, name=name)
    return FunctionBackend(student_reply, name=name)


def fake_deps(compiler: FakeCompiler | None = None) -> BenchDeps:
    """Bench dependencies wired to the fakes (a dummy sandbox: the fake plans have no code)."""
    return BenchDeps(
        get_template=lambda template_id: SimpleNamespace(id=template_id),  # type: ignore[arg-type,return-value]
        synthesise=fake_synthesise,
        make_hub=lambda settings: ModelHub(settings, resolver=fake_resolver),
        make_sandbox=lambda: contextlib.nullcontext(SimpleNamespace(name="fake-sandbox")),  # type: ignore[arg-type,return-value]
        compile_fn=compiler or FakeCompiler(),
    )


def fake_config(**overrides: Any) -> BenchConfig:
    """A small bench config over the fakes."""
    data: dict[str, Any] = {
        "name": "fake bench",
        "student": STUDENT,
        "teacher": TEACHER,
        "templates": ["gsmhard-0000"],
        "m": [3, 5],
        "methods": ["direct", "sgde"],
        "seeds": [0],
        "n_test": 8,
    }
    data.update(overrides)
    return BenchConfig.model_validate(data)


def mapping_rows(results: Mapping[str, Any], method: str) -> list[Mapping[str, Any]]:
    """Summary rows of one method."""
    return [r for r in results["summary"] if r["method"] == method]


def ray_bindings(models: Mapping[str, str], settings: ModelSettings) -> dict[str, FunctionBackend]:
    """``WorkerSpec.bindings_factory`` for the Ray tests: fakes built on the worker."""
    return {role: fake_resolver(name, settings) for role, name in models.items()}
