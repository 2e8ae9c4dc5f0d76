"""A program verified on the training rows: the :class:`Program` record every candidate source
returns, and :func:`verify_program`, the one check in the sandbox (a module of its own so that
the sources import it without importing each other)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sgde.optimize.sources.code import run_harnessed
from sgde.optimize.sources.context import read_outputs, value_text
from sgde.runtime.calls import CodeRunner
from sgde.task import FieldType, Metric, TaskSpec, safe_score

__all__ = ["TEXT", "Program", "verify_program"]

TEXT = FieldType(kind="string")
"""The type of a free-text field (the default of a field no row types)."""

_PASS = 1.0 - 1e-9


@dataclass(frozen=True)
class Program:
    """Code for a whole-task (or sub-task) code node, verified on the training rows.

    Attributes:
        code: ``def run(**params) -> dict`` with the task's output fields (self-contained:
            it converts dates and sets to JSON values itself).
        params: Parameter name -> type, in signature order.
        values: Per training row, the parameter values that make the code right (``None``:
            that row's values could not be aligned).
        raw_inputs: Params that ARE task input fields, read verbatim (param -> input name).
        descriptions: Param -> a description that holds across phrasings (never quoting
            a training value nor where it stands in one row).
        origin: ``"lift"``, ``"repair"``, ``"whole"`` or ``"enumerative"``.
        searched: Hypotheses its source examined against the training rows up to and
            including this one — failed candidates count too (for the PAC statement).
        verified_rows: Rows where ``run(**values[i])`` scored 1 with the task metric.
        contexts: Param -> the words around its value in the training rows, the values
            masked (``"ducks lay ___ eggs per day"``; :mod:`~sgde.optimize.sources.contexts`).
        answers: Optional param -> the output field of the node the program replaces whose
            own answer feeds it (a classifier that abstains where it reads nothing takes the
            student's label there, :mod:`~sgde.optimize.sources.cues`); the node then stays.
    """

    code: str
    params: dict[str, FieldType]
    values: list[dict[str, Any] | None]
    raw_inputs: dict[str, str] = field(default_factory=dict)
    descriptions: dict[str, str] = field(default_factory=dict)
    origin: str = "lift"
    searched: int = 1
    verified_rows: int = 0
    contexts: dict[str, list[str]] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)

    @property
    def extracted(self) -> list[str]:
        """Params that must be read from the inputs (not raw, not the node's answers)."""
        return [p for p in self.params if p not in self.raw_inputs and p not in self.answers]

    def to_dict(self) -> dict[str, Any]:
        """JSON form (types by their spelling)."""
        return {
            "code": self.code,
            "params": {k: str(v) for k, v in self.params.items()},
            "values": self.values,
            "raw_inputs": self.raw_inputs,
            "descriptions": self.descriptions,
            "contexts": self.contexts,
            "origin": self.origin,
            "searched": self.searched,
            "verified_rows": self.verified_rows,
            "answers": self.answers,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Program:
        """Read :meth:`to_dict`'s form."""
        return cls(
            code=str(data["code"]),
            params={k: FieldType.parse(v) for k, v in dict(data["params"]).items()},
            values=[None if v is None else dict(v) for v in data.get("values", [])],
            raw_inputs=dict(data.get("raw_inputs", {})),
            descriptions=dict(data.get("descriptions", {})),
            contexts={k: [str(c) for c in v] for k, v in dict(data.get("contexts", {})).items()},
            origin=str(data.get("origin", "lift")),
            searched=int(data.get("searched", 1)),
            verified_rows=int(data.get("verified_rows", 0)),
            answers={str(k): str(v) for k, v in dict(data.get("answers", {})).items()},
        )


async def verify_program(
    sandbox: CodeRunner,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    metric: Metric,
    code: str,
    values: Sequence[Mapping[str, Any] | None],
) -> list[str | None]:
    """Per row, ``None`` when ``run(**values[i])`` scores 1, else why not.

    Raises:
        TaskMetricError: when the user's metric raises on well-typed outputs.
    """
    out: list[str | None] = []
    for i, row in enumerate(rows):
        vals = values[i] if i < len(values) else None
        if vals is None:
            out.append("its parameter values could not be read")
            continue
        run = await run_harnessed(sandbox, code, "run", dict(vals), trace=False)
        if not run.ok:
            out.append(f"error: {run.error}")
            continue
        outputs = read_outputs(run.result, task.outputs)
        if isinstance(outputs, str):
            out.append(outputs)
            continue
        score = safe_score(metric, row, outputs, where=f"training row {i + 1}")
        out.append(
            None if score.value >= _PASS else f"got {value_text(outputs, 120)} ({score.feedback})"
        )
    return out
