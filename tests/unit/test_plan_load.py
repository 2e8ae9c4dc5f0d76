"""Loading plan files: YAML errors, model errors mapped to lines, round-trip, hash, saving."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from plan_samples import DUCK_YAML, REPORT_YAML

from sgde.errors import DataError, PlanError, Problem, UsageError
from sgde.plan import CodeNode, ConsensusNode, LlmNode, Plan, canonical_json, plan_hash
from sgde.planfile import dump_plan, load_plan, loads_plan, parse_plan, save_plan


def _load_problems(text: str) -> list[Problem]:
    with pytest.raises(PlanError) as info:
        loads_plan(text, source="p.yaml")
    assert info.value.path == "p.yaml"
    return info.value.problems


# -- loading ---------------------------------------------------------------------------------


def test_loads_the_issue_plan() -> None:
    plan = loads_plan(DUCK_YAML)
    assert plan.name == "duck-eggs"
    assert [n.kind for n in plan.nodes] == ["llm", "consensus", "code"]
    extract, vote, compute = plan.nodes
    assert isinstance(extract, LlmNode) and extract.fields() == ["eggs"]
    assert isinstance(vote, ConsensusNode) and (vote.of, vote.n) == ("extract", 5)
    assert isinstance(compute, CodeNode) and "return" in compute.code
    assert plan.metadata["history"][0]["loss"] == 0.2


def test_load_plan_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "duck.yaml"
    path.write_text(DUCK_YAML, encoding="utf-8")
    assert load_plan(path) == loads_plan(DUCK_YAML)


def test_load_plan_accepts_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + DUCK_YAML.encode())
    assert load_plan(path).name == "duck-eggs"


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nope\.yaml: cannot read plan file: file not found"):
        load_plan(tmp_path / "nope.yaml")


def test_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is a directory"):
        load_plan(tmp_path)


def test_non_utf8_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"schema_version: 1\nname: caf\xe9\n")
    with pytest.raises(
        DataError, match=r"latin1\.yaml:2: cannot read plan file: not UTF-8"
    ) as info:
        load_plan(path)
    assert info.value.line == 2


def test_dates_stay_strings_so_plans_stay_json() -> None:
    plan = loads_plan(DUCK_YAML + "  created: 2024-01-31\n")
    assert plan.metadata["created"] == "2024-01-31"


def test_validate_false_skips_semantic_checks() -> None:
    text = DUCK_YAML.replace("compute.answer", "ghost.answer")
    assert loads_plan(text, validate=False).outputs == {"answer": "ghost.answer"}
    problems = _load_problems(text)
    assert [p.field for p in problems] == ["outputs.answer"]


# -- YAML and model errors -------------------------------------------------------------------


def test_empty_file() -> None:
    with pytest.raises(PlanError, match="empty"):
        loads_plan("# nothing here\n")


def test_not_a_mapping() -> None:
    (problem,) = _load_problems("- a\n- b\n")
    assert "must be a YAML mapping" in problem.message and "not a list" in problem.message
    assert problem.line == 1


def test_bad_yaml_names_the_line() -> None:
    text = "schema_version: 1\nname: x\nnodes:\n  - id: a\n   kind: llm\n"
    (problem,) = _load_problems(text)
    assert problem.message.startswith("invalid YAML:")
    assert problem.line == 5


def test_two_documents_are_rejected() -> None:
    (problem,) = _load_problems("name: a\n---\nname: b\n")
    assert "single document" in problem.message and problem.line == 2


def test_duplicate_keys_are_errors() -> None:
    text = DUCK_YAML.replace(
        "    temperature: 0.0\n", "    temperature: 0.0\n    temperature: 0.5\n"
    )
    (problem,) = _load_problems(text)
    assert problem == Problem(
        "duplicate key 'temperature' (first at line 14); YAML would silently keep only the "
        "last value",
        node_id="extract",
        field="temperature",
        line=15,
    )


BAD_MODEL = """\
schema_version: 2
name: 12
nodes:
  - id: a-b
    kind: llm
    promt: hello
    temperature: hot
  - id: c
    kind: foo
  - id: d
  - just a string
"""


def test_model_errors_map_to_lines_nodes_and_fields() -> None:
    got = {(p.line, p.node_id, p.field): p.message for p in _load_problems(BAD_MODEL)}
    assert got[(1, None, "schema_version")] == (
        "unsupported schema_version 2; this sgde reads plan format 1"
    )
    assert "quote the value" in got[(2, None, "name")]
    assert "must start with a letter" in got[(4, "a-b", "id")]
    assert got[(4, "a-b", "prompt")] == "missing required field 'prompt'"
    assert got[(6, "a-b", "promt")].startswith("unknown field 'promt'; did you mean 'prompt'?")
    assert "valid number" in got[(7, "a-b", "temperature")]
    assert "(got 'hot')" in got[(7, "a-b", "temperature")]
    assert got[(9, "c", "kind")] == "unknown node kind 'foo'; use one of: llm, code, consensus"
    assert "node has no 'kind'" in got[(10, "d", "kind")]
    assert got[(11, None, None)] == "a node must be a mapping (id, kind, inputs, ...), not a string"
    assert len(got) == 9


def test_unknown_plan_field_suggests_the_right_one() -> None:
    problems = _load_problems(DUCK_YAML.replace("outputs:", "output:"))
    unknown = [p for p in problems if p.field == "output"]
    assert unknown and "did you mean 'outputs'?" in unknown[0].message
    assert unknown[0].line == 5


def test_problems_are_sorted_by_line_and_str_lists_them() -> None:
    with pytest.raises(PlanError) as info:
        loads_plan(BAD_MODEL, source="p.yaml")
    lines = [p.line for p in info.value.problems]
    assert lines == sorted(lines)
    assert "p.yaml:6: node 'a-b' field 'promt'" in str(info.value)


# -- round-trip ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [DUCK_YAML, REPORT_YAML], ids=["duck", "report"])
def test_round_trip_is_equal_and_stable(text: str) -> None:
    plan = loads_plan(text)
    dumped = dump_plan(plan)
    again = loads_plan(dumped)
    assert again == plan
    assert again.metadata == plan.metadata
    assert dump_plan(again) == dumped


def test_dump_is_readable() -> None:
    dumped = dump_plan(loads_plan(DUCK_YAML))
    top = [line.split(":")[0] for line in dumped.splitlines() if line[:1].isalpha()]
    assert top == [
        "schema_version",
        "name",
        "description",
        "inputs",
        "outputs",
        "nodes",
        "metadata",
    ]
    assert "inputs: {question: string}\n" in dumped
    assert '    code: |\n      def run(eggs):\n          return {"answer": eggs * 2}\n' in dumped
    node_keys = [line.strip().split(":")[0] for line in dumped.splitlines()[7:20]]
    assert node_keys[:4] == ["kind", "model", "inputs", "system"]
    # Defaults that say what a node does are written; empty optional ones are not.
    assert "    n: 5\n    temperature: 0.7\n    vote: majority\n" in dumped
    assert "retries" not in dumped and "timeout_s" not in dumped and "top_p" not in dumped


def test_multiline_prompt_and_system_use_block_style() -> None:
    dumped = dump_plan(loads_plan(REPORT_YAML))
    assert "    system: |\n      You are careful.\n      Think step by step.\n" in dumped
    assert "    prompt: |\n      Question: {{ question }}\n" in dumped


def test_awkward_strings_survive_the_round_trip() -> None:
    base = loads_plan(DUCK_YAML)
    extract = base.nodes[0]
    texts = [
        "no trailing newline\n{{ question }}",
        "trailing spaces   \n{{ question }}\n",
        "  leading indent\n{{ question }}\n\n\n",
        "quotes ' \" and # hash: colon\n{{ question }}",
        "unicode: naïve café – ∑ 🦆 {{ question }}",
        "",
    ]
    for text in texts:
        node = extract.model_copy(update={"system": text})
        plan = base.model_copy(update={"nodes": [node, *base.nodes[1:]]})
        assert loads_plan(dump_plan(plan)) == plan, text


def test_metadata_is_preserved_verbatim() -> None:
    meta = {"z": 1, "a": [1, 2.5, None, True], "nested": {"deep": {"list": ["x\ny", "q"]}}}
    plan = loads_plan(DUCK_YAML).model_copy(update={"metadata": meta})
    again = loads_plan(dump_plan(plan))
    assert again.metadata == meta
    assert list(again.metadata) == ["z", "a", "nested"]


# -- hashing ---------------------------------------------------------------------------------


def test_hash_format_and_canonical_json() -> None:
    plan = loads_plan(DUCK_YAML)
    digest = plan_hash(plan)
    assert digest.startswith("sha256:") and len(digest) == 7 + 64
    canonical = canonical_json(plan)
    assert '"metadata"' not in canonical
    assert '"retries":0' in canonical  # defaults are included
    data = json.loads(canonical)
    assert canonical == json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert [n["id"] for n in data["nodes"]] == ["compute", "extract", "extract_vote"]


def test_hash_ignores_key_order_style_comments_node_order_and_metadata() -> None:
    plan = loads_plan(DUCK_YAML)
    reordered = """\
# the same plan, written differently
name: duck-eggs
schema_version: 1
outputs:
  answer: compute.answer
description: optional text
inputs:
  question: string
nodes:
  - kind: code
    id: compute
    inputs: {eggs: extract_vote.eggs}
    code: "def run(eggs):\\n    return {\\"answer\\": eggs * 2}\\n"
  - {id: extract_vote, kind: consensus, of: extract}
  - id: extract
    kind: llm
    prompt: "Problem: {{ question }}"
    system: You extract quantities from word problems.
    inputs: {question: input.question}
    output_schema:
      required: [eggs]
      properties: {eggs: {type: number}}
      type: object
metadata: {something: else}
"""
    other = loads_plan(reordered)
    assert other != plan
    assert plan_hash(other) == plan_hash(plan)


def test_hash_changes_with_content() -> None:
    plan = loads_plan(DUCK_YAML)
    extract = plan.nodes[0]
    changed = plan.model_copy(
        update={
            "nodes": [extract.model_copy(update={"prompt": "Q: {{ question }}"}), *plan.nodes[1:]]
        }
    )
    assert plan_hash(changed) != plan_hash(plan)
    renamed = plan.model_copy(update={"name": "duck-eggs-2"})
    assert plan_hash(renamed) != plan_hash(plan)
    # Writing a default explicitly changes nothing.
    explicit = loads_plan(DUCK_YAML.replace("    n: 5\n", "    n: 5\n    retries: 0\n"))
    assert plan_hash(explicit) == plan_hash(plan)


def test_hash_is_a_known_constant() -> None:
    """Guards against accidental changes to the canonical form (a format change)."""
    plan = Plan(name="tiny", outputs={"x": "input.x"}, inputs={"x": "number"})
    assert canonical_json(plan) == (
        '{"description":null,"inputs":{"x":"number"},"name":"tiny","nodes":[],'
        '"outputs":{"x":"input.x"},"schema_version":1}'
    )
    expected = hashlib.sha256(canonical_json(plan).encode()).hexdigest()
    assert plan_hash(plan) == "sha256:" + expected
    assert expected == "6d65ea83e5834d39b854654e21882697b9ae7f2ce7ec0c6b5f260ddbd3f7a7e8"


# -- saving ----------------------------------------------------------------------------------


def test_save_plan_writes_atomically_and_round_trips(tmp_path: Path) -> None:
    plan = loads_plan(DUCK_YAML)
    path = tmp_path / "out.yaml"
    save_plan(plan, path)
    assert load_plan(path) == plan
    assert path.read_text(encoding="utf-8") == dump_plan(plan)
    assert [p.name for p in tmp_path.iterdir()] == ["out.yaml"]  # no temporary left over


def test_save_plan_keeps_permissions_of_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_text("old", encoding="utf-8")
    os.chmod(path, 0o640)
    save_plan(loads_plan(DUCK_YAML), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_text(encoding="utf-8").startswith("schema_version: 1\n")


def test_save_plan_into_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot write plan file"):
        save_plan(loads_plan(DUCK_YAML), tmp_path / "missing" / "plan.yaml")
    assert not (tmp_path / "missing").exists()


def test_parse_plan_returns_the_source_map() -> None:
    parsed = parse_plan(DUCK_YAML, source="duck.yaml")
    assert parsed.source == "duck.yaml"
    assert parsed.source_map.line("nodes", 2, "code") == 25
    assert parsed.source_map.text_line(("nodes", 2, "code"), 2) == 27
    assert parsed.source_map.line("nodes", 0, "no-such-field") == 7  # nearest ancestor
