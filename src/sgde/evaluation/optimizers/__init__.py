"""Prompt optimisers with the same teacher, training rows and token budget as SGDe.

Each outputs a single-prompt plan (instruction + demos, then final-number extraction):
APE, OPRO, ProTeGi/TextGrad-style textual gradients, bootstrap few-shot; and the real DSPy
MIPROv2 when ``dspy`` is installed.
"""

from sgde.evaluation.optimizers.ape import ApeMethod
from sgde.evaluation.optimizers.bootstrap import BootstrapFewShotMethod
from sgde.evaluation.optimizers.common import (
    BudgetedBackend,
    Candidate,
    OptimizerMethod,
    OptimizerRun,
    RowOutcome,
    TokenMeter,
    ask_json,
)
from sgde.evaluation.optimizers.dspy_runner import (
    DSPY_MISSING,
    DspyEndpoint,
    DspyMiproMethod,
    dspy_available,
)
from sgde.evaluation.optimizers.opro import OproMethod
from sgde.evaluation.optimizers.textgrad import TextGradMethod

__all__ = [
    "DSPY_MISSING",
    "ApeMethod",
    "BootstrapFewShotMethod",
    "BudgetedBackend",
    "Candidate",
    "DspyEndpoint",
    "DspyMiproMethod",
    "OproMethod",
    "OptimizerMethod",
    "OptimizerRun",
    "RowOutcome",
    "TextGradMethod",
    "TokenMeter",
    "ask_json",
    "dspy_available",
]
