"""The bench grid: cells (task × m × seed × method), data seeds and cell fingerprints."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sgde.evaluation.bench_config import BenchConfig
from sgde.evaluation.sgde_method import SGDE_METHOD

__all__ = ["TRAIN_FREE_METHODS", "Cell", "data_seed", "file_safe", "fingerprint", "grid"]

TRAIN_FREE_METHODS = frozenset({"direct", "cot", "self-consistency", "pal", "pot"})
"""Methods whose prediction does not depend on the training rows (used when a method does
not say so itself through a ``uses_trainset`` attribute)."""


def file_safe(text: str) -> str:
    """``text`` with every character but letters, digits, ``-``, ``_`` and ``.`` as ``_``."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


@dataclass(frozen=True)
class Cell:
    """One grid cell."""

    template: str
    m: int
    seed: int
    method: str

    @property
    def id(self) -> str:
        """File-name-safe id, e.g. ``gsmhard-0001__m3__s0__cot``."""
        return file_safe(f"{self.template}__m{self.m}__s{self.seed}__{self.method}")

    def to_dict(self) -> dict[str, Any]:
        """JSON form (with the id)."""
        return {
            "id": self.id,
            "template": self.template,
            "m": self.m,
            "seed": self.seed,
            "method": self.method,
        }


def grid(config: BenchConfig) -> list[Cell]:
    """Every cell, ordered template → seed → m → method (as configured)."""
    return [
        Cell(template, m, seed, method)
        for template in config.item_ids
        for seed in config.seeds
        for m in config.m
        for method in config.methods
    ]


def data_seed(seed: int, purpose: str, template: str) -> int:
    """A data seed derived from the run seed, the purpose (``train``/``test``) and template.

    Seeds the synthesis of a cell's rows; request seeds of plan runs are
    :func:`sgde.runtime.derive_seed`.
    """
    digest = hashlib.sha256(f"{seed}:{purpose}:{template}".encode()).hexdigest()
    return int(digest[:8], 16)


def fingerprint(config: BenchConfig, cell: Cell) -> str:
    """What a cell's result depends on; a checkpointed cell with another fingerprint reruns."""
    item = config.task_item(cell.template)
    relevant: dict[str, Any] = {
        "item": item.model_dump(mode="json") if item is not None else None,
        "student": config.student,
        "n_test": config.n_test,
        "method_options": config.method_options.get(cell.method, {}),
        "data": [
            data_seed(cell.seed, "train", cell.template),
            data_seed(cell.seed, "test", cell.template),
        ],
    }
    if cell.method == SGDE_METHOD or cell.method not in TRAIN_FREE_METHODS:
        relevant.update(
            teacher=config.teacher,
            budget=config.budget,
            task=config.task,
            # settings left at their defaults are not part of it: a compiler setting added
            # later (with a default) must not rerun every finished cell of an unchanged config
            compile=config.compile.model_dump(mode="json", exclude_defaults=True),
        )
    text = json.dumps(relevant, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]
