"""The task-family machinery: a family, its phrasings, seeded row generation.

A family is one task (one :class:`~sgde.task.TaskSpec`: typed inputs and outputs) whose rows
are drawn from a seeded random generator and worded by one of several *phrasings*. Row ``i``
of a generated set uses phrasing ``(offset + i) mod k`` with a seeded ``offset``: any ``k``
consecutive rows use every phrasing, so a training set of m >= 3 rows and every test set mix
at least three wordings of the same task. Labels are computed by code from the drawn values,
never by a model.

Every row is a JSON-ready dict: the task's input and output fields at the top level, an
``id``, and ``_provenance`` (family, phrasing id, seed, index, and the drawn values) —
fields starting with ``_`` are not task fields (:func:`sgde.task.infer_task` skips them).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sgde.errors import UsageError
from sgde.task import FieldType, TaskSpec

__all__ = [
    "PROVENANCE",
    "Draw",
    "TaskFamily",
    "family_seed",
]

PROVENANCE = "_provenance"
"""Row key of a generated row's provenance (not a task field)."""


@dataclass(frozen=True)
class Draw:
    """One drawn instance of a family: the wording-independent values and the labels.

    Attributes:
        values: The drawn values (JSON-ready), kept in the row's provenance.
        outputs: The gold outputs, computed by code from ``values``.
        slots: Extra text pieces the phrasings may use (e.g. a date already formatted).
    """

    values: Mapping[str, Any]
    outputs: Mapping[str, Any]
    slots: Mapping[str, Any] = field(default_factory=dict)


Phrasing = Callable[[Draw, random.Random], dict[str, Any]]
"""Words one draw: returns the row's input fields (e.g. ``{"text": "..."}``)."""


def family_seed(name: str, seed: int, split: str = "") -> int:
    """The generator seed of a family, a user seed and a split (stable across Pythons)."""
    digest = hashlib.sha256(f"sgde-task-family:{name}:{seed}:{split}".encode()).hexdigest()
    return int(digest[:12], 16)


@dataclass(frozen=True)
class TaskFamily:
    """A generated task family.

    Attributes:
        name: Registry name (``sgde synth --family NAME``).
        kind: What it exercises (``"strings"``, ``"dates"``, ...), for listings.
        description: The task text given to the compiler and the baselines.
        inputs: Input field types (spellings of :class:`~sgde.task.FieldType`).
        outputs: Output field types.
        draw: ``rng -> Draw``: one instance with its labels.
        phrasings: At least three wordings of the task.
        plan: File name of a plan shipped in ``tasks/plans/`` that the compiler starts from
            (multi-node workflows), or None (the compiler's cold start).
        summary: One line for ``sgde synth --list``.
    """

    name: str
    kind: str
    description: str
    inputs: Mapping[str, str]
    outputs: Mapping[str, str]
    draw: Callable[[random.Random], Draw]
    phrasings: Sequence[Phrasing]
    summary: str
    plan: str | None = None

    def __post_init__(self) -> None:
        if len(self.phrasings) < 3:
            raise ValueError(f"task family {self.name!r} needs at least three phrasings")

    def spec(self) -> TaskSpec:
        """The family's typed task."""
        return TaskSpec(
            description=self.description,
            inputs={k: FieldType.parse(v) for k, v in self.inputs.items()},
            outputs={k: FieldType.parse(v) for k, v in self.outputs.items()},
        )

    def plan_path(self) -> Path | None:
        """The shipped starting plan's path, or None."""
        if self.plan is None:
            return None
        ref = resources.files("sgde.evaluation.tasks").joinpath("plans").joinpath(self.plan)
        return Path(str(ref))

    def generate(
        self,
        n: int,
        *,
        seed: int,
        split: str = "",
        exclude: Sequence[str] = (),
        max_tries: int = 50,
    ) -> list[dict[str, Any]]:
        """``n`` rows, deterministic in ``(family, seed)``.

        Args:
            n: Rows to generate.
            seed: The seed.
            split: ``"train"``, ``"test"`` or empty: part of the ids and of the generator's
                seed, so a family's train and test sets of one seed are different draws.
            exclude: Keys (:meth:`input_key`) of rows that must not be generated (a test
                set's rows, so a training set never holds a test instance); duplicates
                within the set are skipped too.
            max_tries: Draws per row before giving up on finding a new instance.

        Raises:
            UsageError: ``n`` < 1, or no new instance found in ``max_tries`` draws.
        """
        if n < 1:
            raise UsageError(f"--n must be at least 1 (got {n})")
        rng = random.Random(family_seed(self.name, seed, split))
        offset = rng.randrange(len(self.phrasings))
        seen = set(exclude)
        rows: list[dict[str, Any]] = []
        for index in range(n):
            phrasing = (offset + index) % len(self.phrasings)
            for _ in range(max_tries):
                draw = self.draw(rng)
                inputs = self.phrasings[phrasing](draw, rng)
                key = self.input_key(inputs)
                if key not in seen:
                    break
            else:
                raise UsageError(
                    f"task family {self.name!r}: no new instance after {max_tries} draws "
                    f"(row {index + 1} of {n}, seed {seed})",
                    hint="ask for fewer rows or use another seed",
                )
            seen.add(key)
            prefix = f"{self.name}-s{seed}" + (f"-{split}" if split else "")
            rows.append(
                {
                    "id": f"{prefix}-{index}",
                    **inputs,
                    **dict(draw.outputs),
                    PROVENANCE: {
                        "family": self.name,
                        "phrasing": phrasing,
                        "seed": seed,
                        "index": index,
                        "values": dict(draw.values),
                    },
                }
            )
        return rows

    def input_key(self, row: Mapping[str, Any]) -> str:
        """What makes a row's instance unique: its input fields, as one string."""
        return "\x1f".join(f"{k}={row[k]}" for k in sorted(self.inputs) if k in row)
