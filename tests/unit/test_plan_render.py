"""Diffs, Mermaid, the JSON Schema and the public APIs of sgde.plan and sgde.planfile."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from plan_samples import DUCK_YAML, REPORT_YAML

import sgde.plan
import sgde.planfile
from sgde.plan import (
    PLAN_SCHEMA_ID,
    ConsensusNode,
    LlmNode,
    Plan,
    plan_hash,
    plan_json_schema,
    to_mermaid,
)
from sgde.planfile import diff_plans, loads_plan


def _with_node(plan: Plan, index: int, **update: object) -> Plan:
    nodes = list(plan.nodes)
    nodes[index] = nodes[index].model_copy(update=update)
    return plan.model_copy(update={"nodes": nodes})


# -- diff -----------------------------------------------------------------------------------


def test_equal_plans_have_an_empty_diff() -> None:
    a = loads_plan(DUCK_YAML)
    b = a.model_copy(update={"nodes": a.nodes[::-1], "metadata": {"other": 1}})
    diff = diff_plans(a, b)
    assert diff.is_empty and diff.metadata_changed
    assert plan_hash(a) == plan_hash(b)
    assert "no differences in plan content" in diff.render()
    assert "metadata differs" in diff.render()


def test_prompt_change_is_a_unified_diff() -> None:
    a = loads_plan(DUCK_YAML)
    b = _with_node(a, 0, prompt="Problem: {{ question }}\nAnswer with JSON only.", temperature=0.2)
    diff = diff_plans(a, b, a_label="old.yaml", b_label="new.yaml")
    assert not diff.is_empty
    (change,) = diff.changed
    assert change.node_id == "extract"
    assert [c.field for c in change.changes] == ["prompt", "temperature"]
    assert diff.render() == (
        "--- old.yaml\n"
        "+++ new.yaml\n"
        "node 'extract' changed:\n"
        "  ~ prompt:\n"
        "      --- a/extract.prompt\n"
        "      +++ b/extract.prompt\n"
        "      @@ -1 +1,2 @@\n"
        "       Problem: {{ question }}\n"
        "      +Answer with JSON only.\n"
        "  ~ temperature: 0.0 -> 0.2\n"
    )


def test_code_change_is_a_unified_diff_and_lines_are_typed() -> None:
    a = loads_plan(DUCK_YAML)
    b = _with_node(a, 2, code="def run(eggs):\n    return {'answer': eggs * 3}\n")
    diff = diff_plans(a, b)
    kinds = {line.text.strip(): line.kind for line in diff.lines()}
    assert kinds['-    return {"answer": eggs * 2}'] == "removed"
    assert kinds["+    return {'answer': eggs * 3}"] == "added"
    assert kinds["@@ -1,2 +1,2 @@"] == "hunk"
    assert kinds["node 'compute' changed:"] == "section"


def test_added_removed_nodes_and_wiring() -> None:
    a = loads_plan(DUCK_YAML)
    check = LlmNode(id="check", inputs={"a": "compute.answer"}, prompt="Is {{ a }} right?")
    b = a.model_copy(
        update={
            "nodes": [
                a.nodes[0],
                a.nodes[2].model_copy(update={"inputs": {"eggs": "extract.eggs"}}),
                check,
            ],
            "inputs": {"question": "string", "units": "string"},
            "outputs": {"answer": "compute.answer", "verdict": "check.text"},
            "name": "duck-eggs-2",
        }
    )
    diff = diff_plans(a, b)
    assert [n.id for n in diff.added] == ["check"]
    assert [n.id for n in diff.removed] == ["extract_vote"]
    assert [(c.field, c.old, c.new) for c in diff.plan_changes] == [
        ("name", "duck-eggs", "duck-eggs-2")
    ]
    assert [c.field for c in diff.input_changes] == ["inputs.units"]
    assert [c.field for c in diff.output_changes] == ["outputs.verdict"]
    text = diff.render()
    assert "node 'check' added (llm):\n  + id: check\n  + kind: llm\n" in text
    assert "node 'extract_vote' removed (consensus):\n  - id: extract_vote\n" in text
    assert '  ~ inputs.eggs: "extract_vote.eggs" -> "extract.eggs"' in text
    assert 'inputs:\n  + units: "string"' in text
    assert 'outputs:\n  + verdict: "check.text"' in text
    assert '  ~ name: "duck-eggs" -> "duck-eggs-2"' in text


def test_kind_change_of_a_node_lists_every_field() -> None:
    a = loads_plan(DUCK_YAML)
    nodes = list(a.nodes)
    nodes[1] = LlmNode(id="extract_vote", prompt="x")
    diff = diff_plans(a, a.model_copy(update={"nodes": nodes}))
    fields = [c.field for c in diff.changed[0].changes]
    assert "kind" in fields and "of" in fields and "prompt" in fields


def test_schema_change_is_shown_as_json_diff() -> None:
    a = loads_plan(DUCK_YAML)
    schema = {"type": "object", "properties": {"eggs": {"type": "integer"}}, "required": ["eggs"]}
    diff = diff_plans(a, _with_node(a, 0, output_schema=schema))
    text = diff.render()
    assert '      -      "type": "number"\n      +      "type": "integer"\n' in text


# -- mermaid --------------------------------------------------------------------------------


def test_mermaid_of_the_issue_plan() -> None:
    assert to_mermaid(loads_plan(DUCK_YAML)) == (
        "flowchart TD\n"
        '    in_question[/"input: question (string)"/]\n'
        '    n_extract["extract<br/>llm · student"]\n'
        '    n_extract_vote{{"extract_vote<br/>consensus ×5 · majority"}}\n'
        '    n_compute[["compute<br/>code"]]\n'
        '    out_answer[\\"output: answer"\\]\n'
        '    in_question -->|"question"| n_extract\n'
        '    n_extract_vote -->|"eggs"| n_compute\n'
        '    n_compute -->|"answer"| out_answer\n'
        '    n_extract -.->|"sampled ×5"| n_extract_vote\n'
    )


def test_mermaid_escapes_and_merges_edge_labels() -> None:
    plan = loads_plan(REPORT_YAML).model_copy(
        update={"inputs": {"question": "string", "limit": "integer", 'we"ird<in>': "string"}}
    )
    text = to_mermaid(plan)
    assert 'in_we_ird_in_[/"input: we#quot;ird#lt;in#gt; (string)"/]' in text
    assert '    n_explain -->|"text"| n_check\n' in text
    assert '    n_explain -->|"text"| out_note\n' in text
    assert text.count("-->") == 5


def test_mermaid_ids_never_collide() -> None:
    plan = Plan(
        name="p",
        inputs={"a-b": "string", "a_b": "string"},
        outputs={"x": "input.a-b", "y": "input.a_b"},
    )
    text = to_mermaid(plan)
    assert "in_a_b[/" in text and "in_a_b_2[/" in text


# -- JSON schema ----------------------------------------------------------------------------


def test_plan_json_schema_validates_plans() -> None:
    schema = plan_json_schema()
    assert schema["$id"] == PLAN_SCHEMA_ID
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"].startswith("sgde execution plan")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for text in (DUCK_YAML, REPORT_YAML):
        validator.validate(yaml.safe_load(text))
        validator.validate(loads_plan(text).model_dump(mode="json"))
    bad = yaml.safe_load(DUCK_YAML)
    del bad["nodes"][0]["kind"]
    assert not validator.is_valid(bad)  # kind is required, as the loader requires it
    bad = yaml.safe_load(DUCK_YAML)
    bad["nodes"][1]["n"] = 1
    assert not validator.is_valid(bad)


def test_plan_json_schema_is_a_fresh_copy() -> None:
    first = plan_json_schema()
    first["$defs"]["LlmNode"]["required"].append("mutated")
    assert "mutated" not in plan_json_schema()["$defs"]["LlmNode"]["required"]
    assert json.loads(json.dumps(plan_json_schema())) == plan_json_schema()


# -- public API -----------------------------------------------------------------------------


@pytest.mark.parametrize("package", [sgde.plan, sgde.planfile], ids=lambda m: m.__name__)
def test_all_is_complete_and_sorted(package: object) -> None:
    exported = set(package.__all__)  # type: ignore[attr-defined]
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, type(sgde)) and name != "annotations"
    }
    assert public == exported
    listed = package.__all__  # type: ignore[attr-defined]
    assert listed == sorted(listed, key=lambda n: (not n.isupper(), n))


def test_the_documented_names_are_exported() -> None:
    plan_contract = {
        "plan_hash",
        "topo_order",
        "node_fields",
        "plan_json_schema",
        "to_mermaid",
        "Plan",
        "LlmNode",
        "CodeNode",
        "ConsensusNode",
        "Node",
        "Ref",
        "parse_ref",
    }
    planfile_contract = {
        "load_plan",
        "loads_plan",
        "dump_plan",
        "save_plan",
        "validate_plan",
        "check_plan",
        "template_variables",
        "diff_plans",
    }
    assert plan_contract <= set(sgde.plan.__all__)
    assert planfile_contract <= set(sgde.planfile.__all__)


def test_only_planfile_opens_files() -> None:
    for package in (sgde.plan, sgde.planfile):
        for path in Path(package.__file__).parent.glob("*.py"):  # type: ignore[arg-type]
            text = path.read_text(encoding="utf-8")
            # planfile/files.py: the guarded readers and the atomic writer every layer uses.
            if package is sgde.plan or path.name != "files.py":
                assert "open(" not in text, path
    assert isinstance(ConsensusNode(id="v", of="x"), ConsensusNode)


@pytest.mark.parametrize(
    ("package", "name"),
    [
        (sgde.planfile, "load_plan"),
        (sgde.planfile, "validate_plan"),
        (sgde.planfile, "diff_plans"),
        (sgde.plan, "to_mermaid"),
    ],
)
def test_public_functions_have_docstrings(package: object, name: str) -> None:
    doc = getattr(package, name).__doc__
    assert doc and len(doc.strip()) > 20
