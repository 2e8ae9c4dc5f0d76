"""Generated task families for the general benchmark (``benchmarks/tasks_general.yaml``).

Nine families written for sgde (not from GSM), each a typed task worded in at least three
ways, with labels computed by code and rows deterministic by seed::

    from sgde.evaluation.tasks import get_family

    family = get_family("date-add")
    rows = family.generate(20, seed=0, split="test")
    spec = family.spec()            # TaskSpec: text -> answer: date

``sgde synth --family NAME --n N --seed S --out F.jsonl`` writes the same rows;
``sgde synth --list`` lists the families next to the GSM-Hard templates.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType

from sgde.errors import UsageError
from sgde.evaluation.tasks.base import PROVENANCE, Draw, TaskFamily, family_seed
from sgde.evaluation.tasks.flow_families import DATE_ADD, REFUND_WORKFLOW
from sgde.evaluation.tasks.number_families import (
    LIST_MEDIAN,
    LIST_TOP_THREE,
    ORDER_TOTAL,
    RECTANGLE,
    SHIPPING_PRICE,
)
from sgde.evaluation.tasks.text_families import LETTER_COUNT, REVIEW_SENTIMENT

__all__ = [
    "FAMILIES",
    "PROVENANCE",
    "Draw",
    "TaskFamily",
    "family_names",
    "family_seed",
    "get_family",
]

FAMILIES: Mapping[str, TaskFamily] = MappingProxyType(
    {
        f.name: f
        for f in (
            LETTER_COUNT,
            DATE_ADD,
            LIST_MEDIAN,
            LIST_TOP_THREE,
            ORDER_TOTAL,
            SHIPPING_PRICE,
            RECTANGLE,
            REFUND_WORKFLOW,
            REVIEW_SENTIMENT,
        )
    }
)
"""Every task family by name, in listing order."""


def family_names() -> list[str]:
    """The family names, in listing order."""
    return list(FAMILIES)


def get_family(name: str) -> TaskFamily:
    """The family called ``name``.

    Raises:
        UsageError: unknown name (with close matches and the known names).
    """
    family = FAMILIES.get(name)
    if family is None:
        close = difflib.get_close_matches(name, list(FAMILIES), n=1, cutoff=0.5)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise UsageError(
            f"unknown task family {name!r}",
            hint=hint + "known families: " + ", ".join(FAMILIES),
        )
    return family
