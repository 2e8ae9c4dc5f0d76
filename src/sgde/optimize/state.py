"""The loop's resumable state: what a checkpoint holds besides the plan.

:class:`LoopState` is plain data with a JSON round trip (:meth:`LoopState.to_dict` /
:meth:`LoopState.from_dict`); :mod:`sgde.optimize.checkpoint` writes it atomically next to
the plan with ``schema_version`` :data:`~sgde.optimize.checkpoint.CHECKPOINT_VERSION`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sgde.optimize.records import EditRecord
from sgde.optimize.report import CompileReport
from sgde.optimize.supervision import Solution
from sgde.runtime.backend import Usage
from sgde.runtime.trace import usage_from_dict

__all__ = ["LoopState", "usage_from_dict"]


@dataclass
class LoopState:
    """Everything needed to continue a compile after its last completed iteration.

    Attributes:
        iteration: Iterations completed.
        loss: Training loss of the current plan.
        no_improve: Iterations in a row without an accepted edit.
        history: Typed records of every edit tried.
        tried: ``plan hash -> proposal keys`` already tried on that plan.
        supervised: Whether the teacher has solved the training rows.
        solutions: Verified single-output solutions per row (solve-then-lift path).
        row_solutions: Verified solutions per row from the candidate sources (dicts).
        lifted: Expected values of extraction nodes, ``node_id -> per-row values``.
        programs: Programs behind the plan's extraction nodes, ``node_id -> Program`` dict.
        searched: Hypotheses the candidate sources examined (for the PAC statement).
        searched_by: ``searched`` per source (``lift``, ``whole``, ``enumerative``...).
        ln_prior: ``ln(1/P(h))`` of the edit path so far.
        elapsed_s: Wall time spent before this process.
        teacher_usage: Teacher usage so far.
        student_usage: Student usage so far.
        trainset_hash: Hash of the training rows.
        task: The typed task (``TaskSpec.to_metadata()``).
        report: The report so far.
    """

    iteration: int = 0
    loss: float = 1.0
    no_improve: int = 0
    history: list[EditRecord] = field(default_factory=list)
    tried: dict[str, list[str]] = field(default_factory=dict)
    supervised: bool = False
    solutions: list[Solution | None] = field(default_factory=list)
    row_solutions: list[list[dict[str, Any]]] = field(default_factory=list)
    lifted: dict[str, list[dict[str, Any] | None]] = field(default_factory=dict)
    programs: dict[str, dict[str, Any]] = field(default_factory=dict)
    searched: int = 0
    searched_by: dict[str, int] = field(default_factory=dict)
    ln_prior: float = 0.0
    elapsed_s: float = 0.0
    teacher_usage: Usage = field(default_factory=Usage)
    student_usage: Usage = field(default_factory=Usage)
    trainset_hash: str = ""
    task: dict[str, Any] = field(default_factory=dict)
    report: CompileReport = field(default_factory=CompileReport)

    def to_dict(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "loss": self.loss,
            "no_improve": self.no_improve,
            "history": [r.to_dict() for r in self.history],
            "tried": self.tried,
            "supervised": self.supervised,
            "solutions": [s.to_dict() if s else None for s in self.solutions],
            "row_solutions": self.row_solutions,
            "lifted": self.lifted,
            "programs": self.programs,
            "searched": self.searched,
            "searched_by": self.searched_by,
            "ln_prior": self.ln_prior,
            "elapsed_s": self.elapsed_s,
            "teacher_usage": self.teacher_usage.to_dict(),
            "student_usage": self.student_usage.to_dict(),
            "trainset_hash": self.trainset_hash,
            "task": self.task,
            "report": self.report.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoopState:
        """Rebuild the state (raises ``ValueError``/``KeyError`` on a malformed one)."""
        return cls(
            iteration=int(data["iteration"]),
            loss=float(data.get("loss", 1.0)),
            no_improve=int(data.get("no_improve", 0)),
            history=[EditRecord.from_dict(r) for r in data.get("history", [])],
            tried={k: list(v) for k, v in data.get("tried", {}).items()},
            supervised=bool(data.get("supervised", False)),
            solutions=[Solution.from_dict(s) if s else None for s in data.get("solutions", [])],
            row_solutions=[list(r) for r in data.get("row_solutions", [])],
            lifted={k: list(v) for k, v in data.get("lifted", {}).items()},
            programs={k: dict(v) for k, v in data.get("programs", {}).items()},
            searched=int(data.get("searched", 0)),
            searched_by={k: int(v) for k, v in data.get("searched_by", {}).items()},
            ln_prior=float(data.get("ln_prior", 0.0)),
            elapsed_s=float(data.get("elapsed_s", 0.0)),
            teacher_usage=usage_from_dict(data.get("teacher_usage", {})),
            student_usage=usage_from_dict(data.get("student_usage", {})),
            trainset_hash=str(data.get("trainset_hash", "")),
            task=dict(data.get("task", {})),
            report=CompileReport.from_dict(data.get("report", {})),
        )
