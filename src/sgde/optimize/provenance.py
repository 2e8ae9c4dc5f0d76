"""The compiled plan's provenance: the PAC statement and ``metadata["compile"]``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sgde.optimize.pac import pac_statement
from sgde.optimize.records import EditRecord
from sgde.optimize.report import CompileReport
from sgde.plan import plan_hash
from sgde.plan.model import LlmNode, Plan
from sgde.task import TaskSpec

__all__ = ["finalize"]


def finalize(
    plan: Plan,
    report: CompileReport,
    *,
    task: TaskSpec,
    history: Sequence[EditRecord],
    consistent: bool,
    searched: int,
    sources: Mapping[str, int],
    ln_prior: float,
) -> Plan:
    """Complete ``report`` (PAC statement, final hash, notes) and return ``plan`` with the task
    in ``metadata["task"]`` and the provenance in ``metadata["compile"]``.

    ``|H|`` is every hypothesis searched: the plans the loop scored
    (``report.hypotheses``) plus what the code sources examined (``searched``, per source in
    ``sources``).
    """
    report.final_plan_hash = plan_hash(plan)
    if not any(isinstance(n, LlmNode) for n in plan.nodes):
        report.notes.append(
            "the compiled plan needs no student call: verified code reads and computes every output"
        )
    hypotheses = report.hypotheses + searched
    statement = pac_statement(
        m=report.m,
        hypotheses=hypotheses,
        delta=0.05,
        consistent=consistent,
        ln_inv_prior=ln_prior,
        sources=sources,
    )
    report.pac = statement.to_dict()
    meta = dict(plan.metadata)
    meta["task"] = task.to_metadata()
    meta["compile"] = {
        "teacher": report.teacher,
        "student": report.student,
        "m": report.m,
        "repeats": report.repeats,
        "trainset_hash": report.trainset_hash,
        "iterations": len(report.iterations),
        "initial_loss": report.initial_loss,
        "final_loss": report.final_loss,
        "sgde_version": report.sgde_version,
        "history": [r.to_dict() for r in history],
        "stop_reason": report.stop_reason,
        "hypotheses": hypotheses,
    }
    return plan.model_copy(update={"metadata": meta})
