"""Verified programs for a task, from several candidate sources (best first).

* ``lift`` — typed solve-then-lift of each verified :class:`RowSolution`
  (:mod:`~sgde.optimize.sources.lifting`): other rows' values are aligned by position where
  they line up, else read by the teacher's grammar-constrained typed extraction (also for
  rows where the aligned values fail); parameters equal in every training row fold back
  into constants unless a deterministic reader reads them from the text on every row
  (:func:`_fold`); failing candidates get a repair round fed the failing cases.
* ``whole`` — the teacher writes ``run(**task_inputs)`` over the raw inputs, sampled
  several times; for structured inputs such a program needs no student at all. When no
  sample verifies on every row, the one verified on most rows gets ``repair_rounds`` repairs
  fed its failing rows (inputs, expected outputs, the sandbox error or what it returned).
* ``design`` — when neither verifies on every row and an input is free text: the teacher
  designs the fields a reader copies from a case and ``run`` over them, verified with its
  own reads of every row (:mod:`~sgde.optimize.sources.design`). Before it, for label outputs
  from free text, sgde's classifier over the teacher's cue phrases (:mod:`~.cues`).
* ``enumerative`` — when nothing else verifies: the smallest arithmetic expression over the
  quantities of the inputs that fits every row (:mod:`~sgde.optimize.sources.enumerate`);
  for string outputs, the smallest composition of string transforms of an input or of a
  mention of one (:mod:`~sgde.optimize.sources.enumerate_text`).

Every program runs only in the sandbox and is verified with the task metric on every
training row. Teacher garbage never raises: a candidate that fails is recorded (events)
and the next source is tried.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sgde.optimize.events import CompileEvent, EventSink, emit
from sgde.optimize.sources.code import (
    clean_code,
    entry_params,
    program_source,
)
from sgde.optimize.sources.context import row_inputs, task_context, training_cases, value_text
from sgde.optimize.sources.contexts import value_contexts
from sgde.optimize.sources.cues import cue_programs
from sgde.optimize.sources.design import design_programs
from sgde.optimize.sources.enumerate import enumerative_program
from sgde.optimize.sources.enumerate_text import enumerative_text_program
from sgde.optimize.sources.lifting import (
    LiftParam,
    TypedLift,
    align_row,
    lift_row_solution,
    param_type,
)
from sgde.optimize.sources.readers import text_readers
from sgde.optimize.sources.reading import describe_params, renamed, teacher_extract
from sgde.optimize.sources.solutions import RowSolution
from sgde.optimize.sources.verified import Program, verify_program
from sgde.optimize.teacher import Teacher, render_prompt
from sgde.runtime.calls import CodeRunner
from sgde.runtime.numbers import vote_key
from sgde.task import FieldType, Metric, TaskSpec

__all__ = [
    "Program",
    "SourceBudget",
    "describe_params",
    "program_candidates",
    "teacher_extract",
    "verify_program",
]

_ORIGINS = ("lift", "repair", "design", "whole", "cues", "enumerative")


@dataclass(frozen=True)
class SourceBudget:
    """How much each candidate source may spend.

    Attributes:
        lift_candidates: Distinct verified solutions lifted (best first).
        whole_samples: Teacher samples of whole-task code (0: skip the source).
        design_samples: Teacher samples of a design, fields and code (0: skip the source).
        design_repairs: Repairs of the best design when none verifies on every row.
        cue_samples: Teacher samples of cue lists for label outputs (0: skip the source).
        repair_rounds: Repairs of a lifted program that fails on some rows.
        enumerate: Run the enumerative search when no other program verifies on every row.
        enumerate_max_ops: Operators in a searched expression (above 3: meet in the middle).
        enumerate_max_hypotheses: Cap on the expressions built bottom-up (up to 3 ops).
        describe: Ask the teacher for descriptions of the extracted params.
        temperature: Temperature of sampled teacher calls.
        max_programs: Programs returned at most.
    """

    lift_candidates: int = 3
    whole_samples: int = 2
    design_samples: int = 2
    design_repairs: int = 2
    cue_samples: int = 2
    repair_rounds: int = 1
    enumerate: bool = True
    enumerate_max_ops: int = 5
    enumerate_max_hypotheses: int = 1_000_000
    describe: bool = True
    temperature: float = 0.7
    max_programs: int = 4


@dataclass
class _Log:
    events: EventSink | None
    teacher: Teacher
    lines: list[str] = field(default_factory=list)

    def note(self, source: str, message: str, **data: Any) -> None:
        self.lines.append(f"{source}: {message}")
        emit(
            self.events,
            CompileEvent(
                "supervision",
                self.teacher.iteration,
                f"program source {source}: {message}",
                teacher_tokens=self.teacher.usage.total_tokens,
                data={"source": source, **data},
            ),
        )


def _fallback_description(p: LiftParam, ftype: FieldType) -> str:
    """What the param is, from its name and type (where it stands is its context)."""
    return f"the {p.name.replace('_', ' ')}: {ftype.describe()}"


def _teacher_hint(p: LiftParam, ftype: FieldType) -> str:
    """The fallback and where the value stands in the seed row (for the teacher's reads)."""
    where = f' (in "{p.context}")' if p.context else ""
    return f"{_fallback_description(p, ftype)}{where}"


def _same_in_every_row(
    lift: TypedLift, values: Sequence[Mapping[str, Any] | None]
) -> frozenset[str]:
    """Extracted params whose value is the same in every training row."""
    if len(values) < 2 or any(v is None for v in values):
        return frozenset()
    folded = set()
    for p in lift.params:
        if p.source.kind == "raw":
            continue
        keys = {vote_key(v.get(p.name)) for v in values if v is not None}
        if len(keys) == 1:
            folded.add(p.name)
    return frozenset(folded)


def _fold(
    lift: TypedLift,
    values: Sequence[Mapping[str, Any] | None],
    program: Program,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
) -> tuple[frozenset[str], dict[str, str]]:
    """``(params that stay constants, params kept -> the reader that reads them)``.

    A param the same in every training row stays a constant only when no deterministic
    reader reads it from the text (:func:`~sgde.optimize.sources.readers.text_readers`):
    a few rows cannot tell a fixed fact of the task from a value of the row that happened
    to repeat ("plus 6" in all three rows, other numbers in the next), and the costs are
    not even: reading a value that is in fact constant from the text is still right, a
    frozen value that varies is always wrong. Where no reader gets it, the student would
    have to copy a value the rows never vary, so the constant is the safer guess."""
    same = _same_in_every_row(lift, values)
    if not same:
        return frozenset(), {}
    read = text_readers(task, rows, program, sorted(same))
    return frozenset(n for n in same if n not in read), read


async def _lift_program(
    solution: RowSolution,
    *,
    teacher: Teacher,
    sandbox: CodeRunner,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    metric: Metric,
    budget: SourceBudget,
    seed: int,
    log: _Log,
    seen: set[str],
    examined: dict[str, int],
) -> Program | None:
    seed_inputs = row_inputs(task, rows[solution.row])
    lift = lift_row_solution(solution.code, task, seed_inputs, solution.row)
    if isinstance(lift, str):
        log.note("lift", f"row {solution.row + 1} ({solution.style}): {lift}")
        return None
    outputs = list(task.outputs)
    values: list[dict[str, Any] | None] = []
    for i, row in enumerate(rows):
        if i == solution.row:
            values.append({p.name: p.seed_value for p in lift.params})
            continue
        aligned = align_row(lift, task, seed_inputs, row_inputs(task, row))
        values.append(aligned if len(aligned) == len(lift.params) else None)
    ptypes = {
        p.name: param_type(p, [v.get(p.name) if v else None for v in values], task)
        for p in lift.params
    }
    fallback = {p.name: _fallback_description(p, ptypes[p.name]) for p in lift.params}
    hints = {p.name: _teacher_hint(p, ptypes[p.name]) for p in lift.params}
    extracted_types = {n: t for n, t in ptypes.items() if n not in lift.raw_inputs()}
    seed_values = {n: values[solution.row][n] for n in extracted_types}  # type: ignore[index]

    async def by_teacher(i: int) -> dict[str, Any] | None:
        inputs = row_inputs(task, rows[i])
        got = await teacher_extract(
            teacher, task, extracted_types, hints, seed_inputs, seed_values, inputs
        )
        if got is None:
            return None
        raw = {p: inputs.get(src) for p, src in lift.raw_inputs().items()}
        return {**raw, **got}

    asked: set[int] = set()
    for i in range(len(rows)):
        if values[i] is None:
            values[i] = await by_teacher(i)
            asked.add(i)
    code = lift.program(outputs)
    if code is None or code in seen:
        log.note("lift", f"row {solution.row + 1}: the lifted code is unusable or a repeat")
        return None
    seen.add(code)
    examined["lift"] = examined.get("lift", 0) + 1
    checks = await verify_program(sandbox, task, rows, metric, code, values)
    for i, problem in enumerate(checks):
        if problem is not None and i != solution.row and i not in asked:
            retry = await by_teacher(i)
            if retry is not None and retry != values[i]:
                values[i] = retry
                again = await verify_program(sandbox, task, [rows[i]], metric, code, [retry])
                checks[i] = again[0]
    origin = "lift"
    for round_ in range(budget.repair_rounds):
        failures = [i for i, c in enumerate(checks) if c is not None and values[i] is not None]
        if not failures:
            break
        names = lift.names()
        prompt = render_prompt(
            "repair_program.j2",
            code=_readable(code),
            params=names,
            cases=[
                {
                    "inputs": value_text(row_inputs(task, rows[i]), 300),
                    "params": value_text(values[i]),
                    "expected": value_text({o: rows[i].get(o) for o in outputs}),
                    "outcome": checks[i],
                }
                for i in failures[:3]
            ],
            **task_context(task),
        )
        repaired = clean_code(
            await teacher.code(
                prompt,
                purpose="repair",
                temperature=0.0 if round_ == 0 else budget.temperature,
                seed=seed + 31 * round_,
            )
        )
        examined["lift"] = examined.get("lift", 0) + 1
        if entry_params(repaired, "solution") != names:
            log.note("repair", f"row {solution.row + 1}: the repair changed the signature")
            continue
        fixed = program_source(repaired, "solution", names, outputs)
        if fixed is None:
            continue
        fixed_checks = await verify_program(sandbox, task, rows, metric, fixed, values)
        if sum(c is None for c in fixed_checks) > sum(c is None for c in checks):
            code, checks, origin = fixed, fixed_checks, "repair"
    verified = sum(c is None for c in checks)
    if checks[solution.row] is not None:
        log.note("lift", f"row {solution.row + 1}: the lifted code fails on its own row")
        return None
    log.note(
        "lift",
        f"row {solution.row + 1} ({solution.style}): verified on {verified}/{len(rows)} rows",
        verified=verified,
    )
    final_values = [v if c is None else None for v, c in zip(values, checks, strict=True)]
    # Types from the values that verified (a misaligned first guess may have been a float).
    ptypes = {
        p.name: param_type(p, [v.get(p.name) if v else None for v in final_values], task)
        for p in lift.params
    }
    folded: frozenset[str] = frozenset()
    if verified == len(rows):
        unfolded = Program(code, ptypes, final_values, lift.raw_inputs())
        folded, read = _fold(lift, final_values, unfolded, task, rows)
        for name, reader in read.items():
            log.note(
                "lift",
                f"row {solution.row + 1}: {name} is the same in every training row but "
                f"{reader} reads it: kept a parameter, not a constant",
                param=name,
                reader=reader,
            )
    if folded:
        folded_code = lift.program(outputs, folded) if origin == "lift" else None
        if folded_code is not None:
            code = folded_code
            final_values = [
                None if v is None else {k: x for k, x in v.items() if k not in folded}
                for v in final_values
            ]
            ptypes = {k: t for k, t in ptypes.items() if k not in folded}
    return Program(
        code=code,
        params=ptypes,
        values=final_values,
        raw_inputs={p: s for p, s in lift.raw_inputs().items() if p in ptypes},
        descriptions={k: fallback[k] for k in ptypes},
        origin=origin,
        searched=examined.get("lift", 1),
        verified_rows=verified,
    )


def _readable(code: str) -> str:
    """The teacher's part of a program (without the JSON harness appended to it)."""
    return code.split("\nimport datetime as sgde_datetime")[0].rstrip() + "\n"


async def _whole_programs(
    teacher: Teacher,
    sandbox: CodeRunner,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    metric: Metric,
    *,
    samples: int,
    seed: int,
    budget: SourceBudget,
    log: _Log,
    seen: set[str],
    failed: list[str],
) -> list[Program]:
    names = list(task.inputs)
    labels = any(t.kind == "enum" for t in task.outputs.values())
    prompt = render_prompt(
        "whole_task.j2",
        labels=labels,
        cases=training_cases(task, rows),
        **task_context(task),
    )
    values: list[dict[str, Any] | None] = [row_inputs(task, r) for r in rows]
    best: tuple[int, str, list[str | None]] | None = None
    for k in range(samples):
        text = clean_code(
            await teacher.code(
                prompt,
                purpose="whole",
                temperature=0.0 if k == 0 else budget.temperature,
                seed=seed + 104729 * k,
            )
        )
        params = entry_params(text, "run")
        if params is None or sorted(params) != sorted(names):
            log.note("whole", f"sample {k + 1}: run() must take ({', '.join(names)})")
            continue
        code = program_source(text, "run", params, list(task.outputs))
        if code is None or code in seen:
            continue
        seen.add(code)
        checks = await verify_program(sandbox, task, rows, metric, code, values)
        verified = sum(c is None for c in checks)
        log.note("whole", f"sample {k + 1}: verified on {verified}/{len(rows)} rows")
        if verified == len(rows):
            return [_whole(task, params, code, values, k + 1)]
        failed.append(text)
        if best is None or verified > best[0]:
            best = (verified, text, checks)
    tried = samples
    for round_ in range(budget.repair_rounds):
        if best is None:
            break
        _, text, checks = best
        prompt = render_prompt(
            "repair_whole.j2",
            labels=labels,
            code=text.strip(),
            cases=[
                {
                    "inputs": value_text(row_inputs(task, rows[i]), 400),
                    "expected": value_text({o: rows[i].get(o) for o in task.outputs}),
                    "outcome": checks[i],
                }
                for i, c in enumerate(checks)
                if c is not None
            ][:3],
            **task_context(task),
        )
        repaired = clean_code(
            await teacher.code(
                prompt,
                purpose="repair",
                temperature=0.0 if round_ == 0 else budget.temperature,
                seed=seed + 31 * (round_ + 1),
            )
        )
        tried += 1
        params = entry_params(repaired, "run") or []
        code = None
        if sorted(params) == sorted(names):
            code = program_source(repaired, "run", params, list(task.outputs))
        if code is None or code in seen:
            log.note("whole", f"repair {round_ + 1}: no new run({', '.join(names)})")
            continue
        seen.add(code)
        checks = await verify_program(sandbox, task, rows, metric, code, values)
        verified = sum(c is None for c in checks)
        log.note("whole", f"repair {round_ + 1}: verified on {verified}/{len(rows)} rows")
        if verified == len(rows):
            return [_whole(task, params, code, values, tried)]
        if verified >= best[0]:
            best = (verified, repaired, checks)
    return []


def _whole(
    task: TaskSpec,
    params: Sequence[str],
    code: str,
    values: Sequence[Mapping[str, Any] | None],
    searched: int,
) -> Program:
    """A whole-task program verified on every row (its params are the task's inputs)."""
    return Program(
        code=code,
        params={n: task.inputs[n] for n in params},
        values=[dict(v) for v in values if v is not None],
        raw_inputs={n: n for n in params},
        descriptions={},
        origin="whole",
        searched=searched,
        verified_rows=len(values),
    )


def free_text_inputs(task: TaskSpec, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Input fields holding free text (a string of four or more words in some row)."""
    return [
        name
        for name, t in task.inputs.items()
        if t.kind == "string"
        and any(isinstance(r.get(name), str) and len(str(r[name]).split()) >= 4 for r in rows)
    ]


def _rank(program: Program, free_text: bool) -> tuple[int, int, int]:
    """Best first: verified on more rows; over free text, lifted code (a student reads the
    values, robust to new phrasings) before whole-task code parsing the text itself (fitted
    to the phrasings seen); over fields, the program reading fewest values from text."""
    order = _ORIGINS if free_text else ("whole", "lift", "repair", "design", "cues", "enumerative")
    if free_text:
        return (-program.verified_rows, order.index(program.origin), len(program.extracted))
    return (-program.verified_rows, len(program.extracted), order.index(program.origin))


async def program_candidates(
    teacher: Teacher,
    sandbox: CodeRunner,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    metric: Metric,
    solutions: Sequence[Sequence[RowSolution]],
    *,
    samples: int = 2,
    seed: int = 0,
    budget: SourceBudget | None = None,
    events: EventSink | None = None,
) -> list[Program]:
    """Verified programs for the task, best first (see the module docstring).

    Args:
        teacher: The structured teacher.
        sandbox: Runs all teacher code.
        task: The task.
        rows: Training rows.
        metric: The task metric.
        solutions: Per row, its verified solutions (from :func:`solve_rows`).
        samples: Samples of whole-task code and of designs (the budget's when one is given).
        seed: Base seed of sampled teacher calls.
        budget: Limits per source.
        events: Progress listener.

    Returns:
        Programs verified on every row where their values are known, fully verified ones
        first; ``[]`` when no source verifies (the events say why).

    Raises:
        TaskMetricError: when the user's metric raises.
        BudgetExceeded: from a metered teacher; never swallowed.
    """
    budget = budget or SourceBudget(whole_samples=samples, design_samples=samples)
    log = _Log(events, teacher)
    seen: set[str] = set()
    examined: dict[str, int] = {}
    programs: list[Program] = []
    pool = sorted((s for per_row in solutions for s in per_row), key=lambda s: (s.style, s.row))
    for k, sol in enumerate(pool[: budget.lift_candidates]):
        program = await _lift_program(
            sol,
            teacher=teacher,
            sandbox=sandbox,
            task=task,
            rows=rows,
            metric=metric,
            budget=budget,
            seed=seed + 7919 * k,
            log=log,
            seen=seen,
            examined=examined,
        )
        if program is not None and program.verified_rows >= min(2, len(rows)):
            programs.append(program)
            if program.verified_rows == len(rows):
                break
    whole_failed: list[str] = []  # tried again as designs, the parsing sliced out
    if budget.whole_samples > 0:
        programs += await _whole_programs(
            teacher,
            sandbox,
            task,
            rows,
            metric,
            samples=budget.whole_samples,
            seed=seed,
            budget=budget,
            log=log,
            seen=seen,
            failed=whole_failed,
        )
    text_inputs = free_text_inputs(task, rows)
    free_text = bool(text_inputs)
    if not any(p.verified_rows == len(rows) for p in programs):
        programs += await cue_programs(
            teacher, sandbox, task, rows, metric, budget.cue_samples, budget.temperature, seed,
            log.note, text_inputs,
        )  # fmt: skip
    if (
        budget.design_samples > 0
        and free_text
        and not any(p.verified_rows == len(rows) for p in programs)
    ):
        programs += await design_programs(
            teacher,
            sandbox,
            task,
            rows,
            metric,
            samples=budget.design_samples,
            repair_rounds=budget.design_repairs,
            temperature=budget.temperature,
            seed=seed,
            log=log.note,
            seen=seen,
            solutions=solutions,
            texts=text_inputs,
            prior=whole_failed,
        )
    if budget.enumerate and not any(p.verified_rows == len(rows) for p in programs):
        texts = all(t.kind == "string" for t in task.outputs.values())
        search = enumerative_text_program if texts else enumerative_program
        found = await search(teacher, sandbox, task, rows, metric, budget=budget, log=log.note)
        if found is not None:
            programs.append(found)
    programs.sort(key=lambda p: _rank(p, free_text))
    programs = programs[: budget.max_programs]
    programs = [
        replace(
            p, contexts=value_contexts(task, rows, {n: p.params[n] for n in p.extracted}, p.values)
        )
        for p in programs
    ]
    if budget.describe:
        described: list[Program] = []
        for p in programs:
            extracted = {n: p.params[n] for n in p.extracted}
            if extracted and p.origin != "design":  # a design's FIELDS are its descriptions
                desc, renames = await describe_params(
                    teacher, task, rows, extracted, p.values, p.descriptions, p.contexts
                )
                p = renamed(replace(p, descriptions={**p.descriptions, **desc}), renames)
            described.append(p)
        programs = described
    if not programs:
        log.note("all", "no source produced a verified program: " + " | ".join(log.lines[-4:]))
    return programs
