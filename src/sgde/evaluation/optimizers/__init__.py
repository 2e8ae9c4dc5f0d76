"""Prompt optimisers with the same teacher, training rows and token budget as SGDe.

Each outputs a single-prompt plan (instruction + demos, then final-number extraction):
APE, OPRO, ProTeGi/TextGrad-style textual gradients (``textgrad-style``: our
re-implementation), bootstrap few-shot. The real DSPy and TextGrad run from their own
packages: :mod:`sgde.evaluation.peers`.
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
from sgde.evaluation.optimizers.opro import OproMethod
from sgde.evaluation.optimizers.textgrad import TextGradMethod

__all__ = [
    "ApeMethod",
    "BootstrapFewShotMethod",
    "BudgetedBackend",
    "Candidate",
    "OproMethod",
    "OptimizerMethod",
    "OptimizerRun",
    "RowOutcome",
    "TextGradMethod",
    "TokenMeter",
    "ask_json",
]
