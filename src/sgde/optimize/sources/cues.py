"""``cues`` — a label classifier sgde writes itself from the cue phrases the teacher lists.

For a task whose outputs are labels (enum fields) decided from free text, a weak teacher's
whole-task code is fitted to the cases it sees: it greps for the label names or for one
phrase of one training row. Listing the *words* that signal a label is easier for it than
writing the code that uses them. So the teacher only lists, in one grammar-constrained JSON
call per label field (``cues.j2``: ``{label: [cue, ...]}``), the words and short phrases
people write for each label in general — synonyms and paraphrases, the training rows shown
as examples only — sampled greedy and then at temperature with distinct seeds. sgde writes
the classifier code (:func:`classifier_code`), deterministically and the same for every
task: the text is normalised (case folded, punctuation to spaces), every cue word's and
phrase's matches are counted per label and the label with most matches wins; cues that
belong to no one label (shared by two, or found in a training row of another label) are
dropped (:mod:`~sgde.optimize.sources.cue_match`). Each sample's lists are one
candidate, and their union a further one; each runs only in the sandbox and is verified on
every training row, and only a classifier right on every known row becomes a
:class:`~sgde.optimize.sources.verified.Program` (origin ``cues``, its params the task's
inputs). Where a text holds no cue of any label the classifier abstains: its optional
``student_<field>`` parameters (``Program.answers``) take the replaced node's own label
there, so the plan keeps the student node for those rows; without them (verification) the
most frequent training label is the answer. The union is preferred (it covers more
wordings), then the sample listing most cues. Every candidate verified counts in
``searched``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sgde.optimize.sources.code import program_source
from sgde.optimize.sources.context import row_inputs, task_context, value_text
from sgde.optimize.sources.cue_match import LabelCues, matcher_source, vocabulary, words_of
from sgde.optimize.sources.verified import Program, verify_program
from sgde.optimize.teacher import Teacher, TeacherOutputError, render_prompt
from sgde.runtime.calls import CodeRunner
from sgde.task import Metric, TaskSpec
from sgde.task.values import TaskValueError

__all__ = [
    "STUDENT",
    "CueLists",
    "classifier_code",
    "clean_cues",
    "cue_programs",
    "label_fields",
    "row_words",
    "training_order",
    "union_cues",
]

CueLists = dict[str, dict[str, list[str]]]  # output field -> label -> cues
"""The cues of each label of each label field, normalised."""

_MAX_CUES = 30  # per label
# Cues asked per label, as a fixed-length JSON tuple (``prefixItems``): the teacher's grammar
# drops ``maxItems``, and an unbounded list ran away on the 1.5B teacher (one label's list
# repeating "damaged goods" to the token limit, the other labels never written).
_ASKED = 12
_MAX_CUE_WORDS = 4

# The classifier's entry; the matching functions (:mod:`.cue_match`) and the data (CUES,
# ORDER, TEXTS) come before it.
_CLASSIFY = """

def classify(**inputs):
    words = words_of(" ".join(str(inputs.get(name) or "") for name in TEXTS))
    out = {}
    for field in ORDER:
        said = inputs.get(STUDENT + field)
        found = max(_score(CUES[field][label], words) for label in ORDER[field])
        if found == 0 and said in ORDER[field]:
            out[field] = said
        else:
            out[field] = _label(CUES[field], ORDER[field], words)
    return out
"""

STUDENT = "student_"
"""Prefix of the classifier's optional parameters: the student's own label for a field,
taken where no cue of any label is in the text (the classifier abstains; without it the
most frequent training label is the answer, as when verifying on the training rows)."""

_TUPLE = {"type": "array", "prefixItems": [{"type": "string"}] * _ASKED, "items": False}


def label_fields(task: TaskSpec) -> dict[str, tuple[str, ...]]:
    """Output field -> its labels, when every output of the task is an enum (else ``{}``)."""
    if not task.outputs or any(t.kind != "enum" for t in task.outputs.values()):
        return {}
    return {name: tuple(t.labels or ()) for name, t in task.outputs.items()}


def _normal(cue: Any) -> str:
    """A cue as the classifier matches it: case folded, non-alphanumerics to spaces."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", str(cue).casefold()).split())


def clean_cues(
    listed: Mapping[str, Sequence[Any]], labels: Sequence[str], cap: int | None = _MAX_CUES
) -> dict[str, list[str]]:
    """The cue lists of one label field, normalised: empty and over-long cues (more than
    ``_MAX_CUE_WORDS`` words: a sentence, not a cue) dropped, repeats dropped, at most
    ``cap`` per label, and a cue listed under two labels dropped from both (it tells them
    apart in no case)."""
    out: dict[str, list[str]] = {}
    for label in labels:
        kept: list[str] = []
        for cue in listed.get(label, ()):
            text = _normal(cue)
            if text and len(text.split()) <= _MAX_CUE_WORDS and text not in kept:
                kept.append(text)
        out[label] = kept[:cap]
    owners = Counter(c for cues in out.values() for c in cues)
    return {label: [c for c in cues if owners[c] == 1] for label, cues in out.items()}


def union_cues(samples: Sequence[CueLists], fields: Mapping[str, Sequence[str]]) -> CueLists:
    """The samples' cue lists merged per label, uncapped (a cue two samples put under
    different labels is dropped)."""
    return {
        name: clean_cues(
            {lb: [c for s in samples for c in s[name][lb]] for lb in labels}, labels, None
        )
        for name, labels in fields.items()
    }


def training_order(
    task: TaskSpec, rows: Sequence[Mapping[str, Any]], fields: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Per label field, its labels by frequency in the training rows (most frequent first),
    then in the label set's order."""
    order: dict[str, list[str]] = {}
    for name, labels in fields.items():
        counts: Counter[str] = Counter()
        for row in rows:
            try:
                counts[str(task.outputs[name].coerce(row.get(name)))] += 1
            except TaskValueError:
                continue
        order[name] = sorted(labels, key=lambda lb: (-counts[lb], labels.index(lb)))
    return order


def row_words(
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    fields: Mapping[str, Sequence[str]],
    texts: Sequence[str],
) -> dict[str, dict[str, list[list[str]]]]:
    """Per label field, label -> the words of the text inputs of each training row of it."""
    out: dict[str, dict[str, list[list[str]]]] = {
        n: {lb: [] for lb in ls} for n, ls in fields.items()
    }
    for row in rows:
        words = words_of(" ".join(str(row.get(t) or "") for t in texts))
        for name in fields:
            try:
                out[name][str(task.outputs[name].coerce(row.get(name)))].append(words)
            except (TaskValueError, KeyError):
                continue
    return out


def classifier_code(
    cues: Mapping[str, LabelCues], order: Mapping[str, Sequence[str]], texts: Sequence[str]
) -> str:
    """The classifier's source: ``classify(**inputs) -> {field: label}`` over the text inputs
    ``texts`` (joined): the data as literals, the matching functions, then ``classify``."""
    data = (
        "import re\n\n"
        f"CUES = {dict(cues)!r}\n"
        f"ORDER = { ({k: list(v) for k, v in order.items()})!r}\n"
        f"TEXTS = {list(texts)!r}\n"
        f"STUDENT = {STUDENT!r}\n\n"
    )
    return data + matcher_source() + _CLASSIFY


async def _listed(
    teacher: Teacher,
    prompts: Mapping[str, str],
    fields: Mapping[str, Sequence[str]],
    *,
    temperature: float,
    seed: int,
) -> CueLists | str:
    """One sample of cue lists for every label field, or why there is none."""
    out: CueLists = {}
    for name, labels in fields.items():
        schema = {
            "type": "object",
            "properties": {lb: _TUPLE for lb in labels},
            "required": list(labels),
        }
        try:
            answer = await teacher.json(
                prompts[name],
                schema,
                purpose="cues",
                temperature=temperature,
                seed=seed,
                max_tokens=12 * _ASKED * len(labels) + 64,
            )
        except TeacherOutputError as exc:
            return f"no cue lists for {name!r}: {exc}"
        out[name] = clean_cues(answer, labels)
        if not any(out[name].values()):
            return f"no usable cue for {name!r}"
    return out


async def cue_programs(
    teacher: Teacher,
    sandbox: CodeRunner,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    metric: Metric,
    samples: int,
    temperature: float,
    seed: int,
    log: Callable[..., None],
    texts: Sequence[str],
) -> list[Program]:
    """A cue classifier verified on every training row, as a one-program list (``[]``: none,
    or the task is not labels decided from the free-text inputs ``texts``).

    ``samples`` samples of cue lists (greedy, then at ``temperature`` with distinct seeds),
    then their union when there are two or more; each verified in the sandbox on every row.

    Raises:
        TaskMetricError: when the user's metric raises.
        BudgetExceeded: from a metered teacher; never swallowed.
    """
    fields = label_fields(task)
    if not fields or not texts or samples <= 0:
        return []
    prompts = {
        name: render_prompt(
            "cues.j2",
            field=name,
            asked=_ASKED,
            labels=list(labels),
            cases=[
                {"inputs": value_text(row_inputs(task, r), 400), "label": value_text(r.get(name))}
                for r in rows
            ],
            **task_context(task),
        )
        for name, labels in fields.items()
    }
    order = training_order(task, rows, fields)
    seen_words = row_words(task, rows, fields, texts)
    params = list(task.inputs)
    values: list[dict[str, Any] | None] = [row_inputs(task, r) for r in rows]
    listed: list[CueLists] = []
    for k in range(samples):
        got = await _listed(
            teacher,
            prompts,
            fields,
            temperature=0.0 if k == 0 else temperature,
            seed=seed + 104729 * k,
        )
        if isinstance(got, str):
            log("cues", f"sample {k + 1}: {got}")
            continue
        listed.append(got)
    candidates = [(f"sample {k + 1}", c) for k, c in enumerate(listed)]
    if len(listed) > 1:
        candidates.insert(0, ("union", union_cues(listed, fields)))
    tried = 0
    best: tuple[int, str] | None = None  # (cues, code) of the best verified candidate
    for what, listed_cues in candidates:
        cues = {n: vocabulary(listed_cues[n], seen_words[n]) for n in fields}
        code = program_source(
            classifier_code(cues, order, texts),
            "classify",
            params,
            list(fields),
            optional=[STUDENT + f for f in fields],
        )
        if code is None:
            continue
        tried += 1
        checks = await verify_program(sandbox, task, rows, metric, code, values)
        verified = sum(c is None for c in checks)
        size = sum(
            len(v) for per in cues.values() for kinds in per.values() for v in kinds.values()
        )
        log(
            "cues",
            f"{what}: {size} cue words and phrases kept; verified on {verified}/{len(rows)} "
            f"rows; {value_text(cues, 1500)}",
            cues=cues,
            listed=listed_cues,
            verified=verified,
        )
        if verified == len(rows) and (best is None or size > best[0]):
            best = (size, code)
            if what == "union":
                break
    if best is None:
        return []
    return [
        Program(
            code=best[1],
            params={
                **{n: task.inputs[n] for n in params},
                **{STUDENT + f: task.outputs[f] for f in fields},
            },
            values=[dict(v) for v in values if v is not None],
            raw_inputs={n: n for n in params},
            answers={STUDENT + f: f for f in fields},
            origin="cues",
            searched=tried,
            verified_rows=len(rows),
        )
    ]
