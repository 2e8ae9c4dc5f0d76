"""The method registry: name -> factory, with a did-you-mean error for unknown names.

``sgde bench`` adds ``"sgde"`` (the compiler) on top of these.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from sgde.errors import UsageError
from sgde.evaluation.baselines.base import Method
from sgde.evaluation.baselines.coldstart import ColdStartMethod
from sgde.evaluation.baselines.methods import (
    CotMethod,
    DirectMethod,
    FewShotCotMethod,
    PalMethod,
    PotMethod,
    SelfConsistencyMethod,
)
from sgde.evaluation.optimizers.ape import ApeMethod
from sgde.evaluation.optimizers.bootstrap import BootstrapFewShotMethod
from sgde.evaluation.optimizers.opro import OproMethod
from sgde.evaluation.optimizers.textgrad import TextGradMethod
from sgde.evaluation.peers.method import peer_factory

__all__ = [
    "BASELINES",
    "METHODS",
    "PEER_METHODS",
    "PROMPT_OPTIMIZERS",
    "get_method",
    "method_names",
]

METHODS: Mapping[str, Callable[..., Method]] = MappingProxyType(
    {
        "student": ColdStartMethod,
        "direct": DirectMethod,
        "cot": CotMethod,
        "fewshot-cot": FewShotCotMethod,
        "self-consistency": SelfConsistencyMethod,
        "pal": PalMethod,
        "pot": PotMethod,
        "ape": ApeMethod,
        "opro": OproMethod,
        "textgrad-style": TextGradMethod,
        "bootstrap-fewshot": BootstrapFewShotMethod,
        # The real peers, from their own packages in their own venvs (sgde.evaluation.peers).
        "dspy-gepa": peer_factory("dspy-gepa"),
        "dspy-mipro": peer_factory("dspy-mipro"),
        "textgrad": peer_factory("textgrad"),
    }
)
"""Every method by name; call the factory (with its keyword options) to get a Method."""

BASELINES: tuple[str, ...] = (
    "student",
    "direct",
    "cot",
    "fewshot-cot",
    "self-consistency",
    "pal",
    "pot",
)
"""Methods that use only the student (``student``: the compiler's cold-start plan, drafted
by the teacher unless ``draft: minimal``)."""
PEER_METHODS: tuple[str, ...] = ("dspy-gepa", "dspy-mipro", "textgrad")
"""The real peers (their own packages, run by :mod:`sgde.evaluation.peers`)."""
PROMPT_OPTIMIZERS: tuple[str, ...] = (
    "ape",
    "opro",
    "textgrad-style",
    "bootstrap-fewshot",
    *PEER_METHODS,
)
"""Methods that spend teacher calls in ``prepare`` (our re-implementations and the peers)."""


def method_names() -> list[str]:
    """Registered names, in registry order."""
    return list(METHODS)


def get_method(name: str, **options: Any) -> Method:
    """Create the method registered as ``name``.

    Args:
        name: A registry name (e.g. ``"cot"``, ``"self-consistency"``).
        **options: Keyword options of the method's factory (e.g. ``k=5``).

    Returns:
        A new method.

    Raises:
        UsageError: Unknown name (with close matches) or options the factory rejects.
    """
    factory = METHODS.get(name)
    if factory is None:
        close = difflib.get_close_matches(name, list(METHODS), n=3, cutoff=0.5)
        hint = (
            "did you mean " + ", ".join(repr(c) for c in close) + "?"
            if close
            else "known methods: " + ", ".join(METHODS)
        )
        raise UsageError(f"unknown method {name!r}", hint=hint)
    try:
        return factory(**options)
    except TypeError as exc:
        raise UsageError(
            f"invalid options for method {name!r}: {exc}",
            hint=f"see the docstring of {getattr(factory, '__name__', name)}",
        ) from exc
