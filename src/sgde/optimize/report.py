"""The compile report: ``report.json`` (machine) and ``report.md`` (people)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from sgde.models.usage import format_cost
from sgde.planfile.files import write_text_atomic

__all__ = ["CompileReport", "IterationRecord"]


@dataclass
class IterationRecord:
    """One iteration of the loop.

    Attributes:
        iteration: 1-based iteration number.
        loss_before: Training loss of the current plan at the start.
        proposal: The placement decision (node_id, direction, reason) sgde took.
        critique: The teacher's semantic gradient (node_id, diagnosis, direction, rationale).
        critique_agrees: Whether the teacher named the same node and direction.
        edit: One-line summary of the edit, or ``None`` when no valid edit was found.
        candidate_loss: Training loss of the edited plan.
        accepted: Whether the edit was kept.
        why: Why it was accepted or rejected (or why there was no edit).
        teacher_tokens: Teacher tokens spent in this iteration.
        student_tokens: Student tokens spent in this iteration.
        wall_s: Wall time of the iteration.
        details: Operator detail (code, parameters, candidates tried...).
    """

    iteration: int
    loss_before: float
    proposal: dict[str, Any] | None = None
    critique: dict[str, Any] | None = None
    critique_agrees: bool | None = None
    edit: str | None = None
    candidate_loss: float | None = None
    accepted: bool = False
    why: str = ""
    teacher_tokens: int = 0
    student_tokens: int = 0
    wall_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IterationRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class CompileReport:
    """Everything a compile did, for ``report.json`` / ``report.md`` and plan metadata."""

    plan_name: str = ""
    teacher: str = ""
    student: str = ""
    m: int = 0
    repeats: int = 1
    trainset_hash: str = ""
    sgde_version: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    task: dict[str, Any] = field(default_factory=dict)
    coldstart: dict[str, Any] | None = None
    supervision: dict[str, Any] = field(default_factory=dict)
    initial_loss: float | None = None
    final_loss: float | None = None
    iterations: list[IterationRecord] = field(default_factory=list)
    stop_reason: str = ""
    initial_plan_hash: str = ""
    final_plan_hash: str = ""
    usage: dict[str, dict[str, Any]] = field(default_factory=dict)
    wall_s: float = 0.0
    hypotheses: int = 0
    pac: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``schema_version`` 1)."""
        return {"schema_version": 1, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompileReport:
        names = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["iterations"] = [IterationRecord.from_dict(r) for r in data.get("iterations", [])]
        return cls(**kwargs)

    def accepted_edits(self) -> list[str]:
        """Summaries of the accepted edits, in order."""
        return [r.edit for r in self.iterations if r.accepted and r.edit]

    def to_markdown(self) -> str:
        """A readable report."""

        def loss(v: float | None) -> str:
            return "—" if v is None else f"{v:.3f}"

        lines = [
            f"# Compile report: {self.plan_name}",
            "",
            f"- teacher: `{self.teacher}`, student: `{self.student}`",
            f"- training rows m = {self.m}, repeats k = {self.repeats}, "
            f"training set `{self.trainset_hash}`",
            f"- loss: {loss(self.initial_loss)} → {loss(self.final_loss)} "
            f"in {len(self.iterations)} iteration(s); stopped: {self.stop_reason}",
            f"- final plan `{self.final_plan_hash}` (initial `{self.initial_plan_hash}`)",
            f"- wall time {self.wall_s:.1f} s; candidate plans evaluated |H| = {self.hypotheses}",
            f"- sgde {self.sgde_version}",
            "",
            "## Usage",
            "",
            "Spent tokens and cost exclude calls answered from the request cache (free); the",
            "cached calls are counted, with the tokens they replayed.",
            "",
            "| role | calls | prompt tokens | completion tokens | total | cost | cached calls "
            "(tokens replayed) |",
            "|---|---|---|---|---|---|---|",
        ]
        models = {"teacher": self.teacher, "student": self.student}
        for role, u in self.usage.items():
            cost = format_cost(float(u.get("usd", 0.0)), models.get(role, ""))
            lines.append(
                f"| {role} | {u.get('calls', 0)} | {u.get('prompt_tokens', 0)} | "
                f"{u.get('completion_tokens', 0)} | {u.get('total_tokens', 0)} | {cost} | "
                f"{u.get('cached_calls', 0)} ({u.get('replayed_tokens', 0)}) |"
            )
        if self.task:
            lines += ["", "## Task", "", str(self.task.get("description", "")), ""]
            for role in ("inputs", "outputs"):
                for name, ftype in dict(self.task.get(role, {})).items():
                    lines.append(f"- {role[:-1]} `{name}`: {ftype}")
        if self.coldstart:
            lines += [
                "",
                "## Cold start",
                "",
                f"Initial plan drafted by: {self.coldstart.get('source')}.",
            ]
            for draft in self.coldstart.get("rejected_drafts", []):
                lines.append(f"- rejected draft: {'; '.join(draft)}")
        if self.supervision:
            lines += [
                "",
                "## Supervision",
                "",
                f"Training rows solved by verified teacher code: "
                f"{self.supervision.get('verified', 0)}/{self.m}"
                + (
                    f" ({self.supervision['solutions']} verified solutions in all)."
                    if "solutions" in self.supervision
                    else "."
                ),
            ]
        lines += [
            "",
            "## Iterations",
            "",
            "| # | loss | direction (sgde) | teacher critique | edit | new loss | kept | why |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in self.iterations:
            prop = r.proposal or {}
            crit = r.critique or {}
            critique = (
                (f"{crit.get('node_id')}/{crit.get('direction')}: {crit.get('diagnosis', '')}")
                if crit
                else "—"
            )
            cells = [
                str(r.iteration),
                loss(r.loss_before),
                f"{prop.get('direction', '—')} {prop.get('node_id', '')}".strip(),
                critique,
                r.edit or "no valid edit",
                loss(r.candidate_loss),
                "yes" if r.accepted else "no",
                r.why,
            ]
            lines.append(
                "| " + " | ".join(c.replace("|", "/").replace("\n", " ") for c in cells) + " |"
            )
        if self.pac:
            lines += ["", "## PAC statement", "", str(self.pac.get("text", ""))]
        if self.notes:
            lines += ["", "## Notes", ""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"

    def write(self, directory: str | Path) -> tuple[Path, Path]:
        """Write ``report.json`` and ``report.md`` into ``directory``; returns both paths.

        Raises:
            UsageError: when the directory cannot be created or written.
        """
        out = Path(directory)
        json_path, md_path = out / "report.json", out / "report.md"
        text = json.dumps(self.to_dict(), indent=1, default=str) + "\n"
        write_text_atomic(json_path, text, what="compile report", make_parents=True)
        write_text_atomic(md_path, self.to_markdown(), what="compile report", make_parents=True)
        return json_path, md_path
