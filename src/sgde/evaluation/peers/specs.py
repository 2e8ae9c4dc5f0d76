"""The peers: which package (pinned exactly) each one runs, and its default settings.

A peer is a prompt optimiser we did not write, run from its own package in its own virtual
environment (DSPy pins ``openai<3``, so it can never live in sgde's environment). The pins
are the releases current when the runner was written; changing one creates a new venv.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from sgde.errors import UsageError

__all__ = ["PEERS", "PeerSpec", "VenvSpec", "get_peer"]


@dataclass(frozen=True)
class VenvSpec:
    """One isolated environment.

    Attributes:
        name: Directory name under the peers cache (``dspy-3.4.1``).
        requirements: Exact pins installed with pip.
        check: Python code run with the venv's interpreter to prove the install works.
    """

    name: str
    requirements: tuple[str, ...]
    check: str


DSPY_VENV = VenvSpec(
    name="dspy-3.4.1",
    # ``[deno]``: the Deno runtime dspy.Flex runs optimizer-written code in (Pyodide).
    requirements=("dspy[deno]==3.4.1", "optuna==5.0.0"),
    check="import dspy, optuna; dspy.GEPA; dspy.MIPROv2; print(dspy.__version__)",
)
TEXTGRAD_VENV = VenvSpec(
    name="textgrad-0.1.8",
    requirements=("textgrad==0.1.8",),
    check="import textgrad; print(textgrad.__version__ if hasattr(textgrad, '__version__') "
    "else '0.1.8')",
)


@dataclass(frozen=True)
class PeerSpec:
    """A peer method.

    Attributes:
        name: Bench method name (``dspy-gepa``).
        venv: The environment it runs in.
        optimizer: What the peer runs, as its package spells it (``dspy.GEPA``).
        settings: Default settings (overridable by the bench's ``method_options``).
        budget_knob: The setting that is the peer's own budget (GEPA's metric calls, ...).
    """

    name: str
    venv: VenvSpec
    optimizer: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    budget_knob: str = ""


PEERS: Mapping[str, PeerSpec] = MappingProxyType(
    {
        "dspy-gepa": PeerSpec(
            name="dspy-gepa",
            venv=DSPY_VENV,
            optimizer="dspy.GEPA",
            settings={
                "max_metric_calls": 40,
                "reflection_minibatch_size": 2,
                "use_flex": True,
                "student_max_tokens": 384,
                "teacher_max_tokens": 768,
            },
            budget_knob="max_metric_calls",
        ),
        "dspy-mipro": PeerSpec(
            name="dspy-mipro",
            venv=DSPY_VENV,
            optimizer="dspy.MIPROv2",
            settings={
                "num_candidates": 3,
                "num_trials": 6,
                "max_bootstrapped_demos": 2,
                "max_labeled_demos": 2,
                "student_max_tokens": 384,
                "teacher_max_tokens": 768,
            },
            budget_knob="num_trials",
        ),
        "textgrad": PeerSpec(
            name="textgrad",
            venv=TEXTGRAD_VENV,
            optimizer="textgrad.TextualGradientDescent",
            settings={
                "steps": 3,
                "batch_size": 2,
                "student_max_tokens": 384,
                "teacher_max_tokens": 768,
            },
            budget_knob="steps",
        ),
    }
)
"""Every peer by bench method name."""


def get_peer(name: str) -> PeerSpec:
    """The peer called ``name``.

    Raises:
        UsageError: not a peer (the message lists them).
    """
    spec = PEERS.get(name)
    if spec is None:
        raise UsageError(f"unknown peer {name!r}", hint="peers: " + ", ".join(PEERS))
    return spec
