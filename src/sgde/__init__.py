"""sgde: Semantic Gradient Descent for small language models.

The public API, in one namespace::

    import sgde

    plan = sgde.load_plan("examples/duck_eggs.yaml")
    async with sgde.SandboxPool() as sandbox, sgde.ModelHub() as hub:
        executor = sgde.Executor(hub.bind({"student": "local:smollm2-135m"}), sandbox=sandbox)
        result = await executor.run(plan, {"question": "..."})

Only the errors are imported eagerly. Every other name is imported from its module on first
use (PEP 562), so ``import sgde`` stays light — no pydantic, jinja2 or model SDKs until they
are needed. The modules themselves (:mod:`sgde.plan`, :mod:`sgde.planfile`,
:mod:`sgde.runtime`, :mod:`sgde.models`, :mod:`sgde.optimize`, :mod:`sgde.evaluation`,
:mod:`sgde.testing`) hold the complete APIs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sgde._version import __version__
from sgde.errors import (
    BackendError,
    BudgetExceeded,
    CircuitOpenError,
    CompileError,
    DataError,
    ExecutionError,
    ModelNotFoundError,
    NodeTimeoutError,
    OutputParseError,
    PlanError,
    Problem,
    SandboxError,
    SgdeError,
    TaskDataError,
    TaskMetricError,
    TaskSpecError,
    UsageError,
)

if TYPE_CHECKING:
    from sgde.evaluation.evaluate import EvalResult, evaluate_plan, evaluate_plan_async
    from sgde.models import ModelHub, ModelSettings, resolve_model
    from sgde.models.plan_models import run_sync
    from sgde.optimize import CompileResult, CompileSettings, compile, compile_async
    from sgde.plan import CodeNode, ConsensusNode, LlmNode, Node, Plan, plan_hash
    from sgde.planfile import (
        check_plan,
        diff_plans,
        dump_plan,
        load_plan,
        loads_plan,
        save_plan,
        validate_plan,
    )
    from sgde.runtime import (
        Backend,
        ChatRequest,
        ChatResponse,
        Executor,
        ExecutorSettings,
        NodeTrace,
        RunResult,
        RunTrace,
        read_traces,
        write_traces,
    )
    from sgde.runtime.sandbox import SandboxLimits, SandboxPool

_LAZY: dict[str, str] = {
    **dict.fromkeys(
        ("CodeNode", "ConsensusNode", "LlmNode", "Node", "Plan", "plan_hash"), "sgde.plan"
    ),
    **dict.fromkeys(
        (
            "check_plan",
            "diff_plans",
            "dump_plan",
            "load_plan",
            "loads_plan",
            "save_plan",
            "validate_plan",
        ),
        "sgde.planfile",
    ),
    **dict.fromkeys(
        (
            "Backend",
            "ChatRequest",
            "ChatResponse",
            "Executor",
            "ExecutorSettings",
            "NodeTrace",
            "RunResult",
            "RunTrace",
            "read_traces",
            "write_traces",
        ),
        "sgde.runtime",
    ),
    **dict.fromkeys(("SandboxLimits", "SandboxPool"), "sgde.runtime.sandbox"),
    **dict.fromkeys(("ModelHub", "ModelSettings", "resolve_model"), "sgde.models"),
    "run_sync": "sgde.models.plan_models",
    **dict.fromkeys(
        ("CompileResult", "CompileSettings", "compile", "compile_async"), "sgde.optimize"
    ),
    **dict.fromkeys(
        ("EvalResult", "evaluate_plan", "evaluate_plan_async"), "sgde.evaluation.evaluate"
    ),
}

__all__ = [
    "Backend",
    "BackendError",
    "BudgetExceeded",
    "ChatRequest",
    "ChatResponse",
    "CircuitOpenError",
    "CodeNode",
    "CompileError",
    "CompileResult",
    "CompileSettings",
    "ConsensusNode",
    "DataError",
    "EvalResult",
    "ExecutionError",
    "Executor",
    "ExecutorSettings",
    "LlmNode",
    "ModelHub",
    "ModelNotFoundError",
    "ModelSettings",
    "Node",
    "NodeTimeoutError",
    "NodeTrace",
    "OutputParseError",
    "Plan",
    "PlanError",
    "Problem",
    "RunResult",
    "RunTrace",
    "SandboxError",
    "SandboxLimits",
    "SandboxPool",
    "SgdeError",
    "TaskDataError",
    "TaskMetricError",
    "TaskSpecError",
    "UsageError",
    "__version__",
    "check_plan",
    "compile",
    "compile_async",
    "diff_plans",
    "dump_plan",
    "evaluate_plan",
    "evaluate_plan_async",
    "load_plan",
    "loads_plan",
    "plan_hash",
    "read_traces",
    "resolve_model",
    "run_sync",
    "save_plan",
    "validate_plan",
    "write_traces",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sgde' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
