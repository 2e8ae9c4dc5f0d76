"""Settings of the SGDe compiler, with every placement threshold documented.

All knobs live in :class:`CompileSettings` (pydantic, unknown fields rejected) so a compile
is reproducible from its report: the settings used are written into ``report.json``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CompileSettings"]


class CompileSettings(BaseModel):
    """How the compiler searches, decides and stops.

    Loop:
        max_iters: Iterations of forward → backward → step → accept.
        repeats: ``k``, runs of the plan per training row (seeds ``seed .. seed+k-1``); with
            greedy nodes the repeats agree, with sampled nodes they measure variance.
        patience: Stop after this many iterations in a row without an accepted edit.
        seed: Base seed (student repeats, teacher candidate sampling).

    Placement thresholds (see ``docs/compiler.md``):
        offload_min_error: A node whose outputs are wrong (vs the teacher's verified
            expected values) on at least this fraction of (row, repeat) pairs, and whose output
            is computable (numeric, and the teacher solved the rows as verified code), is
            offloaded to code.
        parse_min_error: A field of an extraction made by an offload that is wrong on MORE
            than this fraction of (row, repeat) pairs is offered to verified parsing code
            (sgde's deterministic readers first: they cost no tokens, and the loss decides).
        consensus_min_disagreement: A node whose repeats disagree on at least this fraction
            of rows ...
        consensus_min_mode_accuracy: ... while the majority across repeats is right on at
            least this fraction of rows, is wrapped in consensus (``consensus_n`` samples).
        consensus_max_error: A node wrong on more than 0 and at most this fraction of
            (row, repeat) pairs is tried in consensus even when its repeats agree (greedy
            nodes): a majority of samples each right with p > 1/2 is right more often.
        split_min_fields: An erring LLM node with at least this many output fields is split
            into two nodes (topology change).
        consensus_n: Samples in a consensus wrap.
        consensus_temperature: Sampling temperature of the fan-out.

    Search:
        beam_width: Follow-up edits tried on a rejected candidate that lowered the
            node-level error (one step of look-ahead); 0 disables the look-ahead.
        program_samples: Solutions sampled per training row by the candidate sources.
        rewrite_candidates: Prompt rewrites the teacher writes per rewrite edit, one per
            layout (plain, rules first, what to look for); each is scored on the training
            rows and the one whose node errs least is kept (1: the plain rewrite only).
        harden_probes: Perturbed training rows each student extraction an offload made is
            probed on when the loop stops (:mod:`sgde.optimize.harden`): an edit that
            misreads fewer of them is kept when the training loss does not rise; 0 disables
            the step.

    Teacher:
        teacher_retries: Extra attempts when the teacher's JSON is malformed (each attempt
            gets the parse/validation error back).
        teacher_max_tokens: Completion limit of JSON calls.
        code_max_tokens: Completion limit of code-writing calls.
        solve_attempts: Attempts per training row to get a verified ``solution()``.
        offload_candidates: Sampled solve-then-lift candidates (distinct seeds, temperature
            ``candidate_temperature``; the first is greedy).
        repair_rounds: Repair rounds per candidate, fed the failing cases and sandbox errors.
        candidate_temperature: Temperature of sampled teacher candidates.
        coldstart_retries: Drafts returned to the teacher with the validator's messages
            before falling back to a minimal valid plan.
        max_failures_shown: Failing traces included in a critique prompt.

    Task (when no :class:`~sgde.task.TaskSpec` is given and the compile starts from a text):
        input_fields: Names of the input fields; ``None``: every field but the outputs
            (see :func:`sgde.task.infer_task`).
        output_fields: Names of the output fields; ``None``: ``answer`` (or ``output``,
            ``label``...), else the last field of the first row. Types are inferred.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_iters: int = Field(default=5, ge=0, le=100)
    repeats: int = Field(default=2, ge=1, le=32)
    patience: int = Field(default=3, ge=1, le=100)
    seed: int = 0

    offload_min_error: float = Field(default=0.34, ge=0.0, le=1.0)
    parse_min_error: float = Field(default=0.0, ge=0.0, le=1.0)
    consensus_min_disagreement: float = Field(default=0.34, ge=0.0, le=1.0)
    consensus_min_mode_accuracy: float = Field(default=0.5, ge=0.0, le=1.0)
    consensus_max_error: float = Field(default=0.5, ge=0.0, le=1.0)
    split_min_fields: int = Field(default=5, ge=2, le=1000)
    consensus_n: int = Field(default=5, ge=2, le=64)
    consensus_temperature: float = Field(default=0.7, ge=0.0, le=2.0)

    beam_width: int = Field(default=2, ge=0, le=8)
    program_samples: int = Field(default=2, ge=1, le=10)
    rewrite_candidates: int = Field(default=3, ge=1, le=3)
    harden_probes: int = Field(default=12, ge=0, le=200)

    teacher_retries: int = Field(default=2, ge=0, le=10)
    teacher_max_tokens: int = Field(default=512, gt=0)
    code_max_tokens: int = Field(default=512, gt=0)
    solve_attempts: int = Field(default=2, ge=1, le=10)
    offload_candidates: int = Field(default=3, ge=1, le=20)
    repair_rounds: int = Field(default=2, ge=0, le=10)
    candidate_temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    coldstart_retries: int = Field(default=2, ge=0, le=10)
    max_failures_shown: int = Field(default=3, ge=1, le=20)

    input_fields: tuple[str, ...] | None = None
    output_fields: tuple[str, ...] | None = None
