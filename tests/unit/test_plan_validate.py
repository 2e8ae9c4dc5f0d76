"""Validation rules: each names its message, node, field and line."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from plan_samples import DUCK_YAML, REPORT_YAML

from sgde.errors import PlanError, Problem
from sgde.planfile import check_plan, loads_plan, parse_plan, validate_plan
from sgde.planfile.validate import CodePolicy
from sgde.runtime.sandbox.policy import check_source as real_check_source


def check(text: str, code_policy: CodePolicy | None = None) -> list[Problem]:
    parsed = parse_plan(text, source="p.yaml")
    return validate_plan(parsed.plan, source_map=parsed.source_map, code_policy=code_policy)


def only(text: str) -> Problem:
    problems = check(text)
    assert len(problems) == 1, problems
    return problems[0]


def duck(old: str, new: str) -> str:
    assert old in DUCK_YAML, old
    return DUCK_YAML.replace(old, new, 1)


def test_sample_plans_are_valid() -> None:
    assert check(DUCK_YAML) == []
    assert check(REPORT_YAML) == []


def test_without_a_source_map_problems_have_no_lines() -> None:
    plan = loads_plan(duck("compute.answer", "compute.total"), validate=False)
    (problem,) = validate_plan(plan)
    assert problem.line is None and problem.field == "outputs.answer"


def test_check_plan_raises_with_all_problems() -> None:
    plan = loads_plan(duck("compute.answer", "nope.answer"), validate=False)
    with pytest.raises(PlanError, match="plan 'duck-eggs' is invalid \\(1 problem\\)") as info:
        check_plan(plan, source="duck.yaml")
    assert info.value.problems[0].node_id is None
    check_plan(loads_plan(DUCK_YAML))  # a valid plan passes silently


# -- ids ------------------------------------------------------------------------------------


def test_duplicate_node_id() -> None:
    text = duck("  - id: compute\n", "  - id: extract\n")
    problems = [p for p in check(text) if p.field == "id"]
    assert problems == [
        Problem(
            "duplicate node id 'extract' (first at line 7); node ids must be unique",
            node_id="extract",
            field="id",
            line=22,
        )
    ]


def test_reserved_node_id() -> None:
    text = duck("  - id: compute\n", "  - id: input\n").replace("compute.answer", "input.question")
    assert only(text) == Problem(
        "node id 'input' is reserved for plan inputs ('input.<name>'); rename it",
        node_id="input",
        field="id",
        line=22,
    )


def test_plan_input_names_must_be_identifiers() -> None:
    problem = only(duck("{question: string}", "{question: string, 'my input': number}"))
    assert problem.field == "inputs.my input" and problem.line == 4
    assert "cannot be referenced" in problem.message


# -- references -----------------------------------------------------------------------------


def test_reference_syntax() -> None:
    problem = only(duck("{eggs: extract_vote.eggs}", "{eggs: extract_vote}"))
    assert problem.node_id == "compute" and problem.field == "inputs.eggs" and problem.line == 24
    assert "must be 'input.<name>' or '<node_id>.<field>'" in problem.message


def test_unknown_plan_input() -> None:
    problem = only(duck("input.question}", "input.qeustion}"))
    assert problem == Problem(
        "reference 'input.qeustion' names unknown plan input 'qeustion'; did you mean "
        "'question'? (plan inputs: question)",
        node_id="extract",
        field="inputs.question",
        line=10,
    )


def test_unknown_node() -> None:
    problem = only(duck("{eggs: extract_vote.eggs}", "{eggs: extract_vot.eggs}"))
    assert problem.message == (
        "reference 'extract_vot.eggs' names unknown node 'extract_vot'; did you mean "
        "'extract_vote'?"
    )
    assert problem.line == 24


def test_unknown_field() -> None:
    problem = only(duck("compute.answer", "compute.answr"))
    assert problem == Problem(
        "reference 'compute.answr': node 'compute' has no field 'answr'; did you mean "
        "'answer'? (fields: answer)",
        node_id=None,
        field="outputs.answer",
        line=5,
    )


def test_free_text_llm_yields_only_text() -> None:
    text = REPORT_YAML.replace("{text: explain.text", "{text: explain.answer")
    problem = only(text)
    assert problem.node_id == "check" and problem.field == "inputs.text"
    assert problem.message.endswith("an llm node without output_schema yields only 'text'")


def test_wrapped_node_must_be_read_through_its_consensus_node() -> None:
    problem = only(duck("{eggs: extract_vote.eggs}", "{eggs: extract.eggs}"))
    assert problem == Problem(
        "reference 'extract.eggs' reads node 'extract', which is wrapped by consensus node "
        "'extract_vote' and never runs on its own; use 'extract_vote.eggs'",
        node_id="compute",
        field="inputs.eggs",
        line=24,
    )


def test_unknown_code_fields_are_allowed() -> None:
    text = duck(
        '          return {"answer": eggs * 2}',
        "          result = {'answer': eggs}\n          return result",
    )
    assert check(text.replace("compute.answer", "compute.anything")) == []


def test_outputs_are_required() -> None:
    text = duck("outputs: {answer: compute.answer}", "outputs: {}")
    problem = only(text)
    assert problem.field == "outputs" and problem.line == 5
    assert "declares no outputs" in problem.message


# -- cycles ---------------------------------------------------------------------------------


CYCLE_YAML = """\
schema_version: 1
name: loop
inputs: {q: string}
outputs: {out: a.text}
nodes:
  - id: a
    kind: llm
    inputs: {x: b.text, q: input.q}
    prompt: "{{ x }} {{ q }}"
  - id: b
    kind: llm
    inputs: {y: c.text}
    prompt: "{{ y }}"
  - id: c
    kind: llm
    inputs: {z: a.text}
    prompt: "{{ z }}"
  - id: d
    kind: llm
    inputs: {me: d.text}
    prompt: "{{ me }}"
"""


def test_cycles_are_named() -> None:
    problems = check(CYCLE_YAML)
    assert [(p.node_id, p.field, p.line, p.message) for p in problems] == [
        (
            "a",
            "inputs",
            8,
            "dependency cycle a -> b -> c -> a (each node needs the next one's output)",
        ),
        ("d", "inputs", 20, "dependency cycle d -> d (each node needs the next one's output)"),
    ]


def test_cycle_through_a_consensus_node() -> None:
    text = duck("{question: input.question}", "{question: compute.answer}")
    (problem,) = [p for p in check(text) if "cycle" in p.message]
    assert problem.message.startswith(
        "dependency cycle extract -> compute -> extract_vote -> extract"
    )


# -- templates ------------------------------------------------------------------------------


def test_template_variable_not_an_input_names_its_line() -> None:
    text = REPORT_YAML.replace(
        "      {% endfor %}\n", "      {% endfor %}\n      Limit: {{ limt }}\n"
    )
    problem = only(text)
    assert problem == Problem(
        "template variable 'limt' is not an input of this node (inputs: question); add it to "
        "inputs or remove it from the prompt",
        node_id="explain",
        field="prompt",
        line=17,
    )


def test_template_syntax_error_names_its_line() -> None:
    text = REPORT_YAML.replace("{% endfor %}", "{% endfro %}")
    problem = only(text)
    assert problem.field == "prompt" and problem.line == 16
    assert problem.message.startswith("template syntax error:")


def test_system_template_is_checked_too() -> None:
    problem = only(duck('"You extract quantities from word problems."', '"Hi {{ user }}"'))
    assert problem.field == "system" and problem.line == 11
    assert "template variable 'user'" in problem.message


def test_unknown_filter_is_a_template_error() -> None:
    problem = only(duck('"Problem: {{ question }}"', '"Problem: {{ question | shout }}"'))
    assert problem.field == "prompt" and "No filter named 'shout'" in problem.message


def test_empty_prompt() -> None:
    problem = only(duck('prompt: "Problem: {{ question }}"', 'prompt: "  "'))
    assert (problem.field, problem.message, problem.line) == ("prompt", "prompt is empty", 12)


def test_input_parameter_names_must_be_identifiers() -> None:
    text = duck("{question: input.question}", "{question: input.question, 'for': input.question}")
    problem = only(text)
    assert problem.field == "inputs.for" and "not a valid identifier" in problem.message


# -- output schemas -------------------------------------------------------------------------


SCHEMA = "{type: object, properties: {eggs: {type: number}}, required: [eggs]}"


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ("{type: objekt}", "not a valid JSON Schema (draft 2020-12) at $.type:"),
        ("{type: object, properties: {eggs: {type: 5}}}", "not a valid JSON Schema"),
        ("{type: array, items: {type: number}}", "must have `type: object`"),
        ("{type: object}", "needs `properties`"),
        ("{type: object, properties: {}}", "needs `properties`"),
        (
            "{type: object, properties: {eggs: {}, 'a.b': {}}}",
            "property 'a.b' cannot be referenced",
        ),
        ("{type: object, properties: {eggs: {}}, required: [egg]}", "`required` lists 'egg'"),
    ],
)
def test_invalid_output_schema(schema: str, message: str) -> None:
    problems = check(duck(SCHEMA, schema))
    schema_problems = [p for p in problems if p.field == "output_schema"]
    assert len(schema_problems) == 1, problems
    assert message in schema_problems[0].message
    assert (schema_problems[0].node_id, schema_problems[0].line) == ("extract", 13)
    # An unusable schema does not also produce "no field" errors downstream.
    assert all("has no field" not in p.message for p in problems)


# -- consensus ------------------------------------------------------------------------------


def test_consensus_of_unknown_node() -> None:
    problem = only(duck("of: extract", "of: extrct"))
    assert problem == Problem(
        "'of' names unknown node 'extrct'; did you mean 'extract'?",
        node_id="extract_vote",
        field="of",
        line=18,
    )


def test_consensus_over_code_is_an_error() -> None:
    text = duck("    of: extract\n", "    of: compute\n")
    problems = check(text)
    (problem,) = [p for p in problems if "code node" in p.message]
    assert (problem.node_id, problem.field, problem.line) == ("extract_vote", "of", 18)
    # Here it also makes a cycle (compute reads extract_vote), reported on its own.
    assert any("dependency cycle extract_vote -> compute" in p.message for p in problems)


def test_consensus_over_consensus_and_itself() -> None:
    extra = "  - {id: again, kind: consensus, of: extract_vote}\n"
    extra += "  - {id: selfish, kind: consensus, of: selfish}\n"
    problems = {p.node_id: p for p in check(duck("metadata:\n", extra + "metadata:\n"))}
    assert "is itself a consensus node" in problems["again"].message
    assert problems["selfish"].message == "a consensus node cannot wrap itself"
    assert (
        len(
            [p for p in check(duck("metadata:\n", extra + "metadata:\n")) if p.node_id == "selfish"]
        )
        == 1
    )


def test_node_wrapped_twice() -> None:
    extra = "  - id: vote2\n    kind: consensus\n    of: extract\n"
    text = duck("  - id: compute\n", extra + "  - id: compute\n")
    problem = only(text)
    assert problem == Problem(
        "node 'extract' is already wrapped by consensus node 'extract_vote'; a node can be "
        "wrapped by one consensus node only",
        node_id="vote2",
        field="of",
        line=24,
    )


def test_consensus_at_temperature_zero() -> None:
    problem = only(duck("    temperature: 0.7\n", "    temperature: null\n"))
    assert (problem.node_id, problem.field, problem.line) == ("extract_vote", "temperature", 20)
    assert "temperature 0" in problem.message


# -- code -----------------------------------------------------------------------------------


def code_plan(code: str, inputs: str = "{eggs: extract_vote.eggs}", extra: str = "") -> str:
    body = "".join(f"      {line}\n" for line in code.splitlines())
    head, _, _ = DUCK_YAML.partition("  - id: compute\n")
    return (
        head + f"  - id: compute\n    kind: code\n    inputs: {inputs}\n{extra}    code: |\n{body}"
    )


def test_code_syntax_error_names_the_file_line() -> None:
    problem = only(code_plan("def run(eggs):\n    x = (\n    return {'answer': eggs}"))
    assert problem.node_id == "compute" and problem.field == "code"
    assert problem.message.startswith("code does not parse:")
    assert problem.line == 27  # the line inside the block, mapped into the file


def test_code_without_run() -> None:
    problem = only(
        code_plan("def main(eggs):\n    return {'answer': eggs}").replace(
            "compute.answer", "compute.x"
        )
    )
    assert (
        problem.message
        == "code must define a top-level function `def run(...)` that returns a dict"
    )
    assert problem.line == 25


def test_async_run() -> None:
    problem = only(code_plan("async def run(eggs):\n    return {'answer': eggs}"))
    assert problem.message == "run must be a plain `def`, not `async def`" and problem.line == 26


def test_run_parameters_must_match_inputs() -> None:
    problems = check(code_plan("def run(eggs, count, /, *, scale):\n    return {'answer': eggs}"))
    messages = {p.message for p in problems}
    assert any("'eggs' of run is positional-only" in m for m in messages)
    assert any("'count' of run is positional-only" in m for m in messages)
    assert any("run requires parameter 'scale'" in m for m in messages)
    assert len(problems) == 3


def test_input_that_run_does_not_take() -> None:
    text = code_plan(
        "def run(eggs):\n    return {'answer': eggs}",
        "{eggs: extract_vote.eggs, egs: input.question}",
    )
    assert only(text) == Problem(
        "input 'egs' is not a parameter of run(eggs); did you mean 'eggs'?",
        node_id="compute",
        field="inputs.egs",
        line=24,
    )


def test_missing_required_parameter() -> None:
    text = code_plan("def run(eggs, days):\n    return {'answer': eggs * days}")
    problem = only(text)
    assert problem.field == "inputs" and problem.line == 24
    assert "run requires parameter 'days', but the node has no input 'days'" in problem.message


def test_defaults_and_kwargs_relax_the_signature_check() -> None:
    assert check(code_plan("def run(eggs, days=7):\n    return {'answer': eggs * days}")) == []
    text = code_plan(
        "def run(**kw):\n    return {'answer': kw['eggs']}",
        "{eggs: extract_vote.eggs, x: input.question}",
    )
    assert check(text) == []


def test_declared_outputs_must_be_returned() -> None:
    text = code_plan(
        "def run(eggs):\n    return {'answer': eggs}", extra="    outputs: [answer, total, total]\n"
    )
    messages = [p.message for p in check(text)]
    assert "output field 'total' is listed twice" in messages
    assert (
        "outputs declares 'total', but run never returns it (its return dicts have: answer)"
        in messages
    )


def test_empty_declared_outputs() -> None:
    text = code_plan("def run(eggs):\n    return {'answer': eggs}", extra="    outputs: []\n")
    problems = check(text)
    assert any(p.message.startswith("outputs is empty") and p.line == 25 for p in problems)


# -- sandbox policy -------------------------------------------------------------------------


@dataclass(frozen=True)
class FakeViolation:
    rule: str
    message: str
    line: int | None


def test_policy_refusals_are_problems() -> None:
    seen: list[str] = []

    def check_source(code: str) -> list[FakeViolation]:
        seen.append(code)
        return [FakeViolation("import-not-allowed", "import of 'os' is not allowed", 1)]

    problems = check(
        code_plan("import os\ndef run(eggs):\n    return {'answer': eggs}"), check_source
    )
    assert len(problems) == 1, problems
    problem = problems[0]
    assert problem == Problem(
        "the sandbox policy refuses this code [import-not-allowed]: import of 'os' is not allowed",
        node_id="compute",
        field="code",
        line=26,
    )
    assert seen == ["import os\ndef run(eggs):\n    return {'answer': eggs}\n"]


def test_policy_duplicates_of_own_checks_are_dropped() -> None:
    problems = check(
        code_plan("def main(eggs):\n    return {'answer': eggs}"),
        lambda code: [FakeViolation("missing-entry", "no run", None)],
    )
    assert [p.message for p in problems if "sandbox" in p.message] == []


def test_validation_without_a_code_policy_checks_no_policy() -> None:
    assert check(code_plan("import os\ndef run(eggs):\n    return {'answer': eggs}")) == []


def test_real_policy_refuses_os_import() -> None:
    problems = check(
        code_plan("import os\ndef run(eggs):\n    return {'answer': os.getpid()}"),
        real_check_source,
    )
    assert problems and all(p.field == "code" for p in problems)
    assert any("sandbox policy refuses" in p.message and p.line == 26 for p in problems)


def test_real_policy_does_not_repeat_own_findings() -> None:
    for code, message in [
        ("async def run(eggs):\n    return {'answer': eggs}", "run must be a plain `def`"),
        ("def main(eggs):\n    return {'answer': eggs}", "code must define a top-level"),
        ("def run(eggs:\n    return {'answer': eggs}", "code does not parse"),
    ]:
        problems = check(code_plan(code).replace("compute.answer", "compute.x"), real_check_source)
        code_problems = [p for p in problems if p.field == "code"]
        assert len(code_problems) == 1, (code, problems)
        assert code_problems[0].message.startswith(message)
