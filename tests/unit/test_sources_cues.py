"""The ``cues`` source: the teacher lists the words that signal each label, sgde writes the
classifier and verifies it on the training rows (a scripted teacher, no models)."""

from __future__ import annotations

from typing import Any

from _sources_fakes import ScriptedTeacher, fenced

from sgde.optimize.sources import SourceBudget, program_candidates
from sgde.optimize.sources.code import run_harnessed
from sgde.optimize.sources.cue_match import vocabulary
from sgde.optimize.sources.cues import clean_cues, union_cues
from sgde.runtime.backend import ChatRequest
from sgde.task import TaskSpec, default_metric
from sgde.testing import InProcessCodeRunner

# Labels decided from free text; whole-task code that greps for the label names fails.
ROUTE = TaskSpec(
    description="Route a support email to the team that handles it.",
    inputs={"email": "string"},
    outputs={"team": "enum[billing,access,outage]"},
)
ROWS = [
    {"email": "Hello, my invoice shows the wrong amount this month.", "team": "billing"},
    {"email": "I forgot my password and cannot sign in anymore.", "team": "access"},
    {"email": "Your website is down for everyone in our office.", "team": "outage"},
    {"email": "Why was I charged twice for one order?", "team": "billing"},
]
CUES = {
    "billing": ["invoice", "charged twice", "refund", "payment", "Billing!"],
    "access": ["password", "sign in", "log in", "locked out", "account access"],
    "outage": ["is down", "not loading", "unavailable", "error page", "outage"],
}
GREP = "import re\ndef run(email):\n    m = re.search(r'billing|access|outage', email)\n"
GREP += "    return {'team': m.group(0) if m else 'billing'}"


def teacher(
    answers: list[dict[str, list[str]]],
    prompts: list[str] | None = None,
    schemas: list[dict[str, Any]] | None = None,
) -> Any:
    """Whole-task code grepping for the label names; ``answers`` to the cue prompts in turn
    (their prompts and schemas appended to ``prompts`` and ``schemas``)."""
    queue = list(answers)

    def cues(req: ChatRequest) -> dict[str, list[str]]:
        if prompts is not None:
            prompts.append(req.messages[-1].content)
        if schemas is not None:
            schemas.append(dict(req.json_schema or {}))
        return queue.pop(0) if queue else {k: [] for k in CUES}

    return ScriptedTeacher(
        {
            "whole": lambda req: fenced(GREP),
            "repair_whole": lambda req: fenced(GREP),
            "cues": cues,
        }
    )


async def _candidates(fake: ScriptedTeacher, rows: list[dict[str, Any]] = ROWS, **kw: Any) -> Any:
    return await program_candidates(
        fake.teacher,
        InProcessCodeRunner(),
        ROUTE,
        rows,
        default_metric(ROUTE),
        [[] for _ in rows],
        budget=SourceBudget(whole_samples=1, enumerate=False, describe=False, **kw),
    )


async def _label(code: str, email: str) -> Any:
    run = await run_harnessed(InProcessCodeRunner(), code, "run", {"email": email})
    assert run.ok, run.error
    return run.result["team"]


async def test_a_cue_classifier_verified_on_every_row_becomes_a_program() -> None:
    prompts: list[str] = []
    schemas: list[dict[str, Any]] = []
    fake = teacher([CUES, CUES], prompts, schemas)
    programs = await _candidates(fake)
    assert [p.origin for p in programs] == ["cues"]
    p = programs[0]
    assert p.raw_inputs == {"email": "email"} and p.verified_rows == 4
    # two samples (identical, so the union is the same code: one hypothesis examined)
    assert fake.seen.count("cues") == 2 and p.searched >= 1
    # the prompt speaks of the task, its labels and shows the rows as examples
    assert "Route a support email" in prompts[0] and "billing, access, outage" in prompts[0]
    assert "invoice shows the wrong amount" in prompts[0]
    # each label's list is a fixed-length tuple in the grammar (an open list ran away)
    listed = schemas[-1]["properties"]["outage"]
    assert listed["items"] is False and len(listed["prefixItems"]) == 12
    # right on paraphrases that no training row has, where the cues cover them
    assert await _label(p.code, "Please REFUNDED me: the payments failed.") == "billing"
    assert await _label(p.code, "I got locked out; can't log in to my account.") == "access"
    assert await _label(p.code, "The dashboard is not loading, only an error page.") == "outage"
    # stems: "invoices" (invoice), "passwords" (password); a phrase needs its words in order
    assert await _label(p.code, "Two invoices arrived.") == "billing"
    assert await _label(p.code, "Reset both passwords please.") == "access"


async def test_no_match_or_a_tie_gives_the_most_frequent_training_label() -> None:
    fake = teacher([CUES])
    (p,) = await _candidates(fake, cue_samples=1)
    assert await _label(p.code, "Hello there.") == "billing"  # 2 of 4 rows are billing
    assert await _label(p.code, "The password is unavailable.") == "access"  # 1 each
    # words and phrases add up: page, down and "is down" (outage 3) beat password (access 1)
    assert await _label(p.code, "The password page is down.") == "outage"
    rows = [*ROWS, {"email": "The login page is unavailable again.", "team": "outage"}]
    (q,) = await _candidates(teacher([CUES]), rows, cue_samples=1)
    # a tie goes to the tied label most frequent in training (outage 2, access 1)
    assert await _label(q.code, "The password is unavailable.") == "outage"


async def test_where_no_cue_is_found_the_students_own_label_is_taken() -> None:
    (p,) = await _candidates(teacher([CUES]), cue_samples=1)
    assert p.answers == {"student_team": "team"} and "student_team" in p.params
    assert p.extracted == []  # the student's answer is no value to extract

    async def label(email: str, said: Any) -> Any:
        args = {"email": email, "student_team": said}
        run = await run_harnessed(InProcessCodeRunner(), p.code, "run", args)
        assert run.ok, run.error
        return run.result["team"]

    assert await label("Hello there.", "outage") == "outage"  # no cue: the student decides
    assert await label("Two invoices arrived.", "outage") == "billing"  # a cue: code decides
    assert await label("Hello there.", "sales") == "billing"  # not a label: the prior
    assert await label("Hello there.", None) == "billing"


def test_a_cue_found_in_a_row_of_another_label_is_dropped() -> None:
    got = vocabulary(
        {"a": ["broken box", "box", "the crack"], "b": ["late", "crack"]},
        {"a": [["the", "box", "broke"]], "b": [["the", "box", "came", "late"]]},
    )
    # "box" is in a row of b: no cue of a; "the" is a function word; "crack" is listed
    # under both labels; the phrases stay unless a row of another label has them
    assert got == {
        "a": {"words": ["broken"], "phrases": ["broken box", "the crack"]},
        "b": {"words": ["late"], "phrases": []},
    }


async def test_without_the_cue_source_nothing_verifies() -> None:
    programs = await _candidates(teacher([CUES]), cue_samples=0)
    assert programs == []


async def test_label_names_alone_do_not_verify() -> None:
    names = {k: [k] for k in CUES}
    fake = teacher([names, names])
    assert await _candidates(fake) == []
    assert fake.seen.count("cues") == 2


async def test_the_union_of_samples_verifies_where_no_sample_does() -> None:
    # each sample alone misses a label (its rows fall to billing); their union has all three
    first: dict[str, list[str]] = {"billing": ["invoice"], "access": ["password"], "outage": []}
    second: dict[str, list[str]] = {
        "billing": ["charged twice"],
        "access": [],
        "outage": ["website"],
    }
    (p,) = await _candidates(teacher([first, second]))
    assert p.origin == "cues" and p.searched == 1  # the union, tried first
    assert await _label(p.code, "I was charged twice.") == "billing"
    assert await _label(p.code, "Your website shows nothing.") == "outage"


def test_cues_are_normalised_and_a_cue_of_two_labels_is_dropped() -> None:
    got = clean_cues(
        {"a": ["Late!", "late", "one two three four five", "", "both"], "b": ["BOTH", "x"]},
        ["a", "b"],
    )
    assert got == {"a": ["late"], "b": ["x"]}
    merged = union_cues(
        [{"f": {"a": ["p"], "b": ["q"]}}, {"f": {"a": ["q", "r"], "b": []}}], {"f": ["a", "b"]}
    )
    assert merged == {"f": {"a": ["p", "r"], "b": []}}


async def test_not_asked_when_the_output_is_no_label() -> None:
    task = TaskSpec(
        description="Count words.", inputs={"email": "string"}, outputs={"n": "integer"}
    )
    fake = teacher([CUES])
    rows = [{"email": "one two three four", "n": 4}, {"email": "a b c d e", "n": 5}]
    await program_candidates(
        fake.teacher,
        InProcessCodeRunner(),
        task,
        rows,
        default_metric(task),
        [[], []],
        budget=SourceBudget(whole_samples=0, enumerate=False, describe=False, design_samples=0),
    )
    assert "cues" not in fake.seen
