"""``design`` — the teacher designs the fields a reader takes from a case, and the code over them.

For a task whose computation needs values the text states in varying ways (a weight in kg
in one case and in grams in the next; a destination that selects a rate from a table the
task description gives), neither other teacher source fits: a row's solution
(``4.00 + 1.50 * 3.2``) has the table's entries as literals that differ per row, so it does
not lift into one program, and whole-task code must parse every phrasing itself.

Here the teacher splits the task where a small student is strong and where code is: it
writes, in one answer, ``FIELDS = {"name": "what it is, with its unit"}`` — the typed values
a reader copies from a case — and ``def run(<those names>)`` computing the outputs from them,
the task's rules and tables as Python data, no text parsing (``design_fields.j2``). The
teacher then reads each training row's fields (:func:`~sgde.optimize.sources.reading.
teacher_extract`, grammar-constrained and typed: from ``run``'s annotations, else read as
text and typed from the values read), and ``run`` is verified on every row in the sandbox
with those values. Whether a unit belongs in the read or in the code is left to the
verification: each sample and repair is its own hypothesis. Only a design verified on every
training row becomes a :class:`~sgde.optimize.sources.verified.Program` (origin
``design``): its params are the fields, its values the teacher's reads and its descriptions
the FIELDS texts, which become the student's extraction schema.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sgde.errors import TaskSpecError
from sgde.optimize.sources.code import clean_code, program_source, run_harnessed
from sgde.optimize.sources.context import row_inputs, task_context, training_cases, value_text
from sgde.optimize.sources.reading import teacher_extract
from sgde.optimize.sources.slicing import narrowed, run_def, slice_parsing
from sgde.optimize.sources.solutions import RowSolution
from sgde.optimize.sources.units import unit_fields_program
from sgde.optimize.sources.verified import TEXT, Program, verify_program
from sgde.optimize.sources.vocabulary import read_by_vocabulary
from sgde.optimize.teacher import Teacher, render_prompt
from sgde.runtime.calls import CodeRunner
from sgde.task import FieldType, Metric, TaskSpec, infer_type
from sgde.task.values import TaskValueError

__all__ = ["Design", "design_programs", "read_design"]

_MAX_FIELDS = 8
_REPAIR_CASES = 3


@dataclass(frozen=True)
class Design:
    """A teacher's design: its code, and the fields ``run`` takes, in signature order.

    Attributes:
        code: The teacher's code (``FIELDS`` and ``run``), top-level effects removed.
        descriptions: Field -> what it is (from ``FIELDS``; the field's name when absent).
        types: Fields whose ``run`` annotation names a task type (others are read as text
            and typed from the values read).
        described: Fields ``FIELDS`` describes.
        sliced: Fields sgde cut out of a ``run`` that parsed the text itself
            (:func:`~sgde.optimize.sources.slicing.slice_parsing`).
    """

    code: str
    descriptions: dict[str, str]
    types: dict[str, FieldType]
    described: frozenset[str] = frozenset()
    sliced: tuple[str, ...] = ()

    def described_by(self, values: Sequence[Mapping[str, Any] | None]) -> Design:
        """This design, a ``FIELDS`` text that is no description (a training value, a single
        word: models fill ``FIELDS`` with an example case's values) replaced by the name."""
        bad = {f for f in self.described if _bare(self.descriptions[f], f, values)}
        if not bad:
            return self
        return replace(
            self,
            descriptions={
                f: f"the {f.replace('_', ' ')}" if f in bad else d
                for f, d in self.descriptions.items()
            },
            described=self.described - bad,
        )

    def inheriting(self, earlier: Design) -> Design:
        """This design, its fields without a ``FIELDS`` description taking ``earlier``'s
        description of the same name (a repair often rewrites ``FIELDS`` as bare types)."""
        taken = {
            f: earlier.descriptions[f]
            for f in self.fields
            if f not in self.described and f in earlier.described
        }
        if not taken:
            return self
        return replace(
            self,
            descriptions={**self.descriptions, **taken},
            described=self.described | frozenset(taken),
        )

    @property
    def fields(self) -> list[str]:
        """The field names, in ``run``'s parameter order."""
        return list(self.descriptions)


def _entry(node: ast.expr) -> tuple[str | None, FieldType | None]:
    """``(description, type)`` of one ``FIELDS`` entry, however the teacher wrote it: a
    description (``"the weight, in kg"``), a type (``float``, ``"float"``), or both in a
    tuple, list or dict (``("float", "the weight")``, ``{"type": ..., "description": ...}``)."""
    parts: list[ast.expr] = [node]
    if isinstance(node, (ast.Tuple, ast.List)):
        parts = list(node.elts)
    elif isinstance(node, ast.Dict):
        parts = [v for v in node.values if v is not None]
    description: str | None = None
    ftype: FieldType | None = None
    for part in parts:
        text = part.value if isinstance(part, ast.Constant) else None
        if isinstance(part, (ast.Name, ast.Subscript, ast.Attribute)):
            ftype = ftype or _annotation_type(part)
        elif isinstance(text, str) and len(text.split()) == 1 and _type_named(text):
            ftype = ftype or _type_named(text)
        elif isinstance(text, str) and text.strip() and description is None:
            description = " ".join(text.split())
    return description, ftype


def _bare(text: str, name: str, values: Sequence[Mapping[str, Any] | None]) -> bool:
    """Whether a ``FIELDS`` text is no description: one word, or a training value of the
    field quoted (a student shown it would copy it)."""
    lowered = f" {text.casefold()} "
    for v in values:
        value = v.get(name) if v is not None else None
        shown = "" if value is None or isinstance(value, list) else str(value).casefold()
        if shown and (shown == text.casefold().strip() or f" {shown} " in lowered):
            return True
    return len(text.split()) < 2


def _fields_literal(tree: ast.Module) -> dict[str, tuple[str | None, FieldType | None]]:
    """The top-level ``FIELDS = {...}`` as ``{name: (description, type)}`` (``{}``: none)."""
    for stmt in tree.body:
        if (
            isinstance(stmt, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "FIELDS" for t in stmt.targets)
            and isinstance(stmt.value, ast.Dict)
        ):
            return {
                k.value: _entry(v)
                for k, v in zip(stmt.value.keys, stmt.value.values, strict=True)
                if isinstance(k, ast.Constant) and isinstance(k.value, str)
            }
    return {}


def _subject(task: TaskSpec) -> tuple[str, str]:
    """``(name, description)`` of a new field for the part of the text a rule applies to:
    named by the task's "the given <noun>" where it says so (else ``subject``)."""
    m = re.search(r"\bthe given ([a-z]+)", task.description, flags=re.IGNORECASE)
    name = m.group(1).lower() if m else "subject"
    return name, f"the {name} the task applies to, copied from the text"


def _listed(text: str) -> tuple[str, list[str]]:
    """``(code, names FIELDS lists)`` of a teacher's answer (no names when it does not parse)."""
    code = clean_code(text)
    try:
        return code, list(_fields_literal(ast.parse(text)))
    except (SyntaxError, ValueError, RecursionError):
        return code, []


def _type_named(text: str) -> FieldType | None:
    try:
        return FieldType.parse(text)
    except (TaskSpecError, ValueError):
        return None


def _annotation_type(node: ast.expr | None) -> FieldType | None:
    """The task type an annotation names (``float``, ``str``, ``list[int]``...), or None."""
    return None if node is None else _type_named(ast.unparse(node))


def _drop_unread(run: ast.FunctionDef, texts: Sequence[str]) -> str | None:
    """Take the free-text inputs ``texts`` out of ``run``'s parameters when its body never
    reads them; why not when it does (a run that parses the text is whole-task code)."""
    read = {n.id for stmt in run.body for n in ast.walk(stmt) if isinstance(n, ast.Name)}
    for name in [a.arg for a in run.args.args if a.arg in texts]:
        if name in read:
            return f"run() parses the input {name!r}: it must take the values copied from it"
    if not run.args.defaults:
        run.args.args = [a for a in run.args.args if a.arg not in texts]
    return None


def read_design(text: str, task: TaskSpec, texts: Sequence[str] = ()) -> Design | str:
    """The design in the teacher's answer ``text``, or why there is none.

    A free-text input (``texts``) ``run`` takes but never reads is dropped from its
    parameters. One it reads is the reader's to copy from, never the code's to parse: the
    parsing is sliced out of ``run`` (what it parsed becomes fields, :mod:`~sgde.optimize.
    sources.slicing`), and where it cannot be the design is refused. ``run``'s parameters
    are the fields (at most ``_MAX_FIELDS``); their descriptions come from ``FIELDS`` (a
    missing entry falls back to the name; ``FIELDS`` entries ``run`` does not take are
    ignored: ``run`` is what gets called); their types from ``run``'s annotations, else from
    ``FIELDS``, else from the values read."""
    code = clean_code(text)
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError) as exc:
        return f"the code does not parse ({type(exc).__name__})"
    run = run_def(tree)
    if run is None:
        return "no top-level def run(...)"
    args = run.args
    if args.vararg or args.kwarg or args.posonlyargs or args.kwonlyargs:
        return "run() must take named fields only"
    taken = len(args.args)
    parses = _drop_unread(run, texts)
    sliced: tuple[str, ...] = ()
    if parses is not None:
        cut = "run() has default values" if args.defaults else slice_parsing(run, texts)
        if isinstance(cut, str):
            return f"{parses} ({cut})"
        sliced = tuple(cut.fields)
    if len(args.args) < taken or sliced:
        code = ast.unparse(tree) + "\n"
    if not args.args or len(args.args) > _MAX_FIELDS:
        return f"run() must take 1 to {_MAX_FIELDS} fields, not {len(args.args)}"
    if all(a.arg in task.inputs for a in args.args):
        return "run() takes only the task's inputs: no field for a reader to copy"
    # FIELDS as written (clean_code drops a FIELDS dict whose entries name types: ``str``)
    listed = _fields_literal(ast.parse(text) if code != text else tree)
    descriptions: dict[str, str] = {}
    types: dict[str, FieldType] = {}
    for a in args.args:
        description, listed_type = listed.get(a.arg, (None, None))
        descriptions[a.arg] = description or f"the {a.arg.replace('_', ' ')}"
        ftype = task.inputs.get(a.arg) or _annotation_type(a.annotation) or listed_type
        if ftype is not None:
            types[a.arg] = ftype
    described = frozenset(f for f in descriptions if listed.get(f, (None, None))[0])
    return Design(
        code=code, descriptions=descriptions, types=types, described=described, sliced=sliced
    )


class _Reads:
    """The teacher's reads of a design's fields, per row (one call per row and field set)."""

    def __init__(self, teacher: Teacher, task: TaskSpec, rows: Sequence[Mapping[str, Any]]):
        self.teacher = teacher
        self.task = task
        self.rows = rows
        self._done: dict[tuple[int, str, bool], dict[str, Any] | None] = {}

    async def values(
        self, design: Design
    ) -> tuple[list[dict[str, Any] | None], dict[str, FieldType]]:
        """Per row, the fields' typed values (``None``: a read failed or is mistyped), and
        the fields' types.

        A field that *is* an input of the task is that input verbatim; a field with no
        annotated type is read as text and typed from its values over the rows."""
        reads = [await self.read(design, i) for i in range(len(self.rows))]
        return _typed(design, reads)

    async def read(self, design: Design, i: int, *, convert: bool = False) -> dict[str, Any] | None:
        """Row ``i``'s fields as the teacher reads them (copied, or with ``convert`` in the
        unit each description names); inputs of the task verbatim."""
        extracted = [f for f in design.fields if f not in self.task.inputs]
        types = {f: design.types.get(f, TEXT) for f in extracted}
        key = repr(sorted((f, str(t), design.descriptions[f]) for f, t in types.items()))
        row = self.rows[i]
        if (i, key, convert) not in self._done:
            self._done[i, key, convert] = await teacher_extract(
                self.teacher,
                self.task,
                types,
                design.descriptions,
                {},
                {},
                row_inputs(self.task, row),
                purpose="design",
                convert=convert,
            )
        got = self._done[i, key, convert]
        raw = {f: row.get(f) for f in design.fields if f in self.task.inputs}
        return None if got is None else {**raw, **got}


def _coerced(read: dict[str, Any] | None, types: Mapping[str, FieldType]) -> dict[str, Any] | None:
    """``read`` coerced to ``types`` (``None`` when a value does not fit its type)."""
    if read is None:
        return None
    try:
        return {f: types[f].coerce(v) if f in types else v for f, v in read.items()}
    except TaskValueError:
        return None


def _typed(
    design: Design, reads: list[dict[str, Any] | None]
) -> tuple[list[dict[str, Any] | None], dict[str, FieldType]]:
    """``(reads, types)``: a field without an annotated type is typed from its values over
    the rows (text when they disagree) and its reads coerced to that type."""
    out = [None if r is None else dict(r) for r in reads]
    types: dict[str, FieldType] = {}
    for f in design.fields:
        if f in design.types:
            types[f] = design.types[f]
            continue
        seen = [r[f] for r in out if r is not None and r.get(f) is not None]
        try:
            types[f] = infer_type(seen) if seen else TEXT
        except TaskValueError:
            types[f] = TEXT
        for r in out:
            if r is not None and r.get(f) is not None:
                try:
                    r[f] = types[f].coerce(r[f])
                except TaskValueError:
                    r[f] = str(r[f])
    return out, types


def _solved(solutions: Sequence[Sequence[RowSolution]], row: int) -> str:
    """The first verified solution of training row ``row`` (``""``: none), at most 12 lines."""
    per_row = solutions[row] if row < len(solutions) else ()
    if not per_row:
        return ""
    lines = per_row[0].code.strip().splitlines()
    return "\n".join(lines[:12])


def _traceable(code: str) -> str:
    """``code`` with every name ``run`` assigns (in branches and loops too) first set to
    ``None`` at the top of ``run``, so that the trace sees them (it reports only names bound
    on every path). For showing a repair what ``run`` computed, never for verification."""
    tree = ast.parse(code)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "run":
            params = {a.arg for a in node.args.args}
            names: list[str] = []
            for stmt in node.body:
                for n in ast.walk(stmt):
                    if (
                        isinstance(n, ast.Name)
                        and isinstance(n.ctx, ast.Store)
                        and n.id not in params
                        and n.id not in names
                    ):
                        names.append(n.id)
            first = [ast.parse(f"{n} = None").body[0] for n in names]
            node.body = [*first, *node.body]
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


async def _steps(sandbox: CodeRunner, design: Design, values: Mapping[str, Any] | None) -> str:
    """The values ``run`` assigned on one row (``rate = 5.5, total = 18.15``; ``""``: none),
    so a repair sees where its computation leaves the task's rule."""
    if values is None:
        return ""
    run = await run_harnessed(sandbox, _traceable(design.code), "run", dict(values), trace=True)
    shown = [f"{k} = {value_text(v, 60)}" for k, v in (run.variables or {}).items()]
    return ", ".join(shown[:12])


@dataclass
class _Tried:
    """A design that failed somewhere: rows verified, rows where ``run`` returned at all."""

    verified: int
    ran: int
    design: Design
    values: list[dict[str, Any] | None]
    checks: list[str | None]


async def design_programs(
    teacher: Teacher,
    sandbox: CodeRunner,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    metric: Metric,
    *,
    samples: int,
    repair_rounds: int,
    temperature: float,
    seed: int,
    log: Callable[..., None],
    seen: set[str],
    solutions: Sequence[Sequence[RowSolution]] = (),
    texts: Sequence[str] = (),
    prior: Sequence[str] = (),
) -> list[Program]:
    """A design verified on every training row, as a one-program list (``[]``: none).

    ``samples`` designs (greedy, then at ``temperature`` with distinct seeds); when none
    verifies on every row, the one verified on most rows (then: returning on most rows,
    then: the first) gets ``repair_rounds`` repairs fed
    its failing rows (inputs, the values read, expected outputs, what ``run`` did); once a
    repair of it comes back unchanged, or when no design ran at all, a design refused for
    parsing the text is repaired instead, told why. A repair may change the fields too;
    they are read again. Every sample and repair counts in
    ``searched``. The prompt shows, under each training case, the teacher's first verified
    solution of that one case (``solutions``, from :func:`~sgde.optimize.sources.solve_rows`)
    when there is one: the rule applied to concrete values, for the design to generalise.
    ``texts`` are the free-text inputs: ``run`` may not parse them (:func:`read_design`).
    ``prior`` are whole-task programs that failed (``run(text)`` parsing the text): each
    whose parsing can be sliced out is tried first, as a design, for the cost of its reads."""
    outputs = list(task.outputs)
    labels = any(t.kind == "enum" for t in task.outputs.values())
    prompt = render_prompt(
        "design_fields.j2",
        labels=labels,
        cases=[
            {**case, "solved": _solved(solutions, i)}
            for i, case in enumerate(training_cases(task, rows))
        ],
        **task_context(task),
    )
    reads = _Reads(teacher, task, rows)
    tried = 0
    best: _Tried | None = None

    refused: list[tuple[str, str]] = []  # designs whose run parses the text, and why
    fresh = True  # whether the last attempt was a new design

    async def attempt(text: str, what: str) -> Program | None:
        nonlocal best, fresh
        fresh = False
        design = read_design(text, task, texts)
        if isinstance(design, str):
            log("design", f"{what}: {design}")
            if design.startswith("run() parses"):
                refused.append((clean_code(text).strip(), design))
            return None
        if best is not None:
            design = design.inheriting(best.design)
        code = program_source(design.code, "run", design.fields, outputs)
        if code is None or code in seen:
            log("design", f"{what}: unusable or a repeat")
            return None
        fresh = True
        seen.add(code)
        values, types = await reads.values(design)
        design = design.described_by(values)
        checks = await verify_program(sandbox, task, rows, metric, code, values)
        units = await unit_fields_program(
            sandbox, task, rows, metric, (design.code, design.descriptions),
            (types, values, checks), texts, tried,
        )  # fmt: skip
        if units is not None:
            log("design", f"{what}: fields {', '.join(units.extracted)}; verified on every "
                "row with the numbers converted from the unit each row writes")  # fmt: skip
            return await read_by_vocabulary(sandbox, task, rows, metric, units, texts)
        for i, problem in enumerate(checks):
            # a row where the copied values fail: read again in the unit each field's
            # description names (a weight written in grams, described in kg); kept when
            # run then verifies on the row
            if problem is None or values[i] is None:
                continue
            again = _coerced(await reads.read(design, i, convert=True), types)
            if again is not None and again != values[i]:
                if (await verify_program(sandbox, task, [rows[i]], metric, code, [again]))[0]:
                    continue
                values[i], checks[i] = again, None
        verified = sum(c is None for c in checks)
        cut = "parsing sliced out of run, " if design.sliced else ""
        log(
            "design",
            f"{what}: {cut}fields {', '.join(design.fields)}; verified on {verified}/{len(rows)}"
            " rows",
            fields=design.fields,
            verified=verified,
        )
        if verified == len(rows):
            program = Program(
                code=code,
                params=types,
                values=values,
                raw_inputs={f: f for f in design.fields if f in task.inputs},
                descriptions={f: d for f, d in design.descriptions.items() if f not in task.inputs},
                origin="design",
                searched=tried,
                verified_rows=verified,
            )
            return await read_by_vocabulary(sandbox, task, rows, metric, program, texts)
        ran = sum(c is None or not c.startswith("error") for c in checks)
        if best is None or (verified, ran) > (best.verified, best.ran):
            best = _Tried(verified, ran, design, values, checks)
        return None

    async def attempt_narrowed(text: str, what: str) -> Program | None:
        # the answer as written, then each variant reading a field it names where it
        # computes over the whole text (:func:`~sgde.optimize.sources.slicing.narrowed`)
        nonlocal tried
        found = await attempt(text, what)
        code, listed = _listed(text)
        fresh = _subject(task)
        for field, variant in [] if found is not None else narrowed(code, texts, listed, fresh):
            tried += 1
            found = await attempt(variant, f"{what}, {field} read in place of the text")
            if found is not None:
                break
        return found

    for k, text in enumerate(prior):
        sliced = read_design(text, task, texts)
        if isinstance(sliced, Design) and sliced.sliced:
            tried += 1
            found = await attempt(text, f"whole-task sample {k + 1}")
            if found is not None:
                return [found]
    for k in range(samples):
        text = await teacher.code(
            prompt,
            purpose="design",
            temperature=0.0 if k == 0 else temperature,
            seed=seed + 104729 * k,
        )
        tried += 1
        found = await attempt_narrowed(text, f"sample {k + 1}")
        if found is not None:
            return [found]
    fresh = True
    for round_ in range(repair_rounds):
        # the best design, fed its failing rows; once a repair of it came back unchanged, a
        # design refused for parsing the text, fed why
        if best is not None and (fresh or not refused):
            failing = [i for i, c in enumerate(best.checks) if c is not None][:_REPAIR_CASES]
            steps = [await _steps(sandbox, best.design, best.values[i]) for i in failing]
            code, problem = best.design.code.strip(), ""
            cases = [
                {
                    "inputs": value_text(row_inputs(task, rows[i]), 400),
                    "read": value_text(best.values[i]) if best.values[i] else "(not read)",
                    "expected": value_text({o: rows[i].get(o) for o in outputs}),
                    "outcome": best.checks[i],
                    "steps": step,
                }
                for i, step in zip(failing, steps, strict=True)
            ]
        elif refused:
            (code, problem), cases = refused.pop(0), []
        else:
            break
        repair = render_prompt(
            "repair_design.j2",
            labels=labels,
            code=code,
            problem=problem,
            cases=cases,
            **task_context(task),
        )
        text = await teacher.code(
            repair,
            purpose="repair",
            temperature=0.0 if round_ == 0 else temperature,
            seed=seed + 31 * (round_ + 1),
        )
        tried += 1
        found = await attempt_narrowed(text, f"repair {round_ + 1}")
        if found is not None:
            return [found]
    return []
