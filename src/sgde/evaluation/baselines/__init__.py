"""Baselines and prompt optimisers behind one :class:`Method` protocol (``sgde bench``).

Plain baselines (student only): ``direct``, ``cot``, ``fewshot-cot``, ``self-consistency``,
``pal``, ``pot``. Prompt optimisers (teacher + student, token budget): ``ape``, ``opro``,
``textgrad``, ``bootstrap-fewshot``, and ``dspy-mipro`` when DSPy is installed. See
``docs/baselines.md``.
"""

from typing import Any

from sgde.evaluation.baselines.base import (
    Method,
    Prediction,
    Prepared,
    Row,
    plan_inputs,
    predict_with_plan,
    require_plan,
    run_plan,
)
from sgde.evaluation.baselines.final_number import extract_final_number
from sgde.evaluation.baselines.methods import (
    CotMethod,
    DirectMethod,
    FewShotCotMethod,
    PalMethod,
    PlanBaseline,
    PotMethod,
    SelfConsistencyMethod,
)
from sgde.evaluation.baselines.plans import (
    Demo,
    PromptProgram,
    cot_plan,
    demos_from_rows,
    direct_plan,
    pal_plan,
    pot_plan,
)
from sgde.evaluation.baselines.programs import pal_program, pot_program

_REGISTRY_NAMES = frozenset(
    {"BASELINES", "METHODS", "PROMPT_OPTIMIZERS", "get_method", "method_names"}
)

__all__ = [
    "BASELINES",
    "METHODS",
    "PROMPT_OPTIMIZERS",
    "CotMethod",
    "Demo",
    "DirectMethod",
    "FewShotCotMethod",
    "Method",
    "PalMethod",
    "PlanBaseline",
    "PotMethod",
    "Prediction",
    "Prepared",
    "PromptProgram",
    "Row",
    "SelfConsistencyMethod",
    "cot_plan",
    "demos_from_rows",
    "direct_plan",
    "extract_final_number",
    "get_method",
    "method_names",
    "pal_plan",
    "pal_program",
    "plan_inputs",
    "pot_plan",
    "pot_program",
    "predict_with_plan",
    "require_plan",
    "run_plan",
]


def __getattr__(name: str) -> Any:
    # The registry imports the optimisers, which import this package's modules: loading it
    # lazily keeps `import sgde.evaluation.optimizers` first from being circular.
    if name in _REGISTRY_NAMES:
        from sgde.evaluation.baselines import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
