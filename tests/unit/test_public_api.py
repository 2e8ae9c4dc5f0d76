"""The public API: ``sgde`` and every subpackage export a curated, complete ``__all__``."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import sgde
import sgde.errors

SRC = Path(sgde.__file__).parent
SUBPACKAGES = sorted(
    ".".join(("sgde", *p.parent.relative_to(SRC).parts))
    for p in SRC.rglob("__init__.py")
    if p.parent != SRC
)

TOP_LEVEL = {
    # plan
    "Plan",
    "Node",
    "LlmNode",
    "CodeNode",
    "ConsensusNode",
    "load_plan",
    "loads_plan",
    "dump_plan",
    "save_plan",
    "validate_plan",
    "check_plan",
    "plan_hash",
    "diff_plans",
    # runtime
    "Backend",
    "ChatRequest",
    "ChatResponse",
    "Executor",
    "ExecutorSettings",
    "RunResult",
    "RunTrace",
    "NodeTrace",
    "read_traces",
    "write_traces",
    "SandboxPool",
    "SandboxLimits",
    # models, compiler, evaluation (imported on first use)
    "ModelHub",
    "ModelSettings",
    "resolve_model",
    "run_sync",
    "compile",
    "compile_async",
    "CompileResult",
    "CompileSettings",
    "evaluate_plan",
    "evaluate_plan_async",
    "EvalResult",
    "__version__",
}


def test_top_level_all_is_the_curated_api_plus_every_error() -> None:
    assert set(sgde.__all__) == TOP_LEVEL | set(sgde.errors.__all__)
    assert len(sgde.__all__) == len(set(sgde.__all__))


@pytest.mark.parametrize("name", sorted(sgde.__all__))
def test_every_top_level_name_resolves(name: str) -> None:
    assert getattr(sgde, name) is not None


def test_top_level_names_are_the_objects_of_their_modules() -> None:
    import sgde.evaluation.evaluate
    import sgde.models
    import sgde.optimize
    import sgde.plan
    import sgde.runtime
    import sgde.runtime.sandbox

    assert sgde.Plan is sgde.plan.Plan
    assert sgde.Executor is sgde.runtime.Executor
    assert sgde.SandboxPool is sgde.runtime.sandbox.SandboxPool
    assert sgde.ModelHub is sgde.models.ModelHub
    assert sgde.compile is sgde.optimize.compile
    assert sgde.evaluate_plan is sgde.evaluation.evaluate.evaluate_plan
    assert sgde.PlanError is sgde.errors.PlanError


def test_unknown_attributes_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = sgde.nope  # type: ignore[attr-defined]
    assert set(sgde.__all__) <= set(dir(sgde))


def test_importing_sgde_stays_light() -> None:
    code = (
        "import sys, sgde; heavy = [m for m in sys.modules if m.split('.')[0] in "
        "{'pydantic', 'jinja2', 'scipy', 'openai', 'llama_cpp'} or m.startswith('sgde.plan')]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_subpackage_all_is_curated_and_resolves(package: str) -> None:
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", None)
    assert exported, f"{package} has no __all__"
    assert len(exported) == len(set(exported)), f"{package}.__all__ has duplicates"
    missing = [name for name in exported if getattr(module, name, None) is None]
    assert not missing, f"{package}.__all__ names that do not resolve: {missing}"
