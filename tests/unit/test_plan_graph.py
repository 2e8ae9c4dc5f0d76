"""The plan as a graph: fields, dependencies, topological order, cycles, code analysis."""

from __future__ import annotations

import pytest
from plan_samples import DUCK_YAML, REPORT_YAML

from sgde.errors import PlanError
from sgde.plan import (
    CodeNode,
    ConsensusNode,
    LlmNode,
    Plan,
    dependencies,
    find_cycles,
    infer_code_fields,
    node_fields,
    topo_order,
)
from sgde.planfile import loads_plan, template_variables


def _plan(*nodes: LlmNode | CodeNode | ConsensusNode) -> Plan:
    return Plan(name="p", inputs={"q": "string"}, nodes=list(nodes))


def test_node_fields_per_kind() -> None:
    duck = loads_plan(DUCK_YAML)
    assert node_fields(duck, "extract") == ["eggs"]
    assert node_fields(duck, "extract_vote") == ["eggs"]  # the wrapped node's fields
    assert node_fields(duck, "compute") == ["answer"]  # inferred from `return {...}`
    report = loads_plan(REPORT_YAML)
    assert node_fields(report, "explain") == ["text"]
    assert node_fields(report, "check") == ["answer"]  # declared
    with pytest.raises(KeyError):
        node_fields(duck, "nope")


def test_consensus_fields_when_the_target_is_missing_or_loops() -> None:
    plan = _plan(
        ConsensusNode(id="a", of="b"),
        ConsensusNode(id="b", of="a"),
        ConsensusNode(id="c", of="ghost"),
    )
    assert node_fields(plan, "a") is None
    assert node_fields(plan, "c") is None


@pytest.mark.parametrize(
    ("code", "fields"),
    [
        ("def run(x):\n    return {'a': x, 'b': 2}", ["a", "b"]),
        (
            "def run(x):\n    if x:\n        return {'a': 1}\n    return {'b': 2, 'a': 3}",
            ["a", "b"],
        ),
        ("def run(x):\n    def helper():\n        return 5\n    return {'a': helper()}", ["a"]),
        ("def run(x):\n    return dict(a=x)", None),
        ("def run(x):\n    d = {'a': x}\n    return d", None),
        ("def run(x):\n    return {**x, 'a': 1}", None),
        ("def run(x):\n    return {x: 1}", None),
        ("def run(x):\n    return", None),
        ("def run(x):\n    pass", None),
        ("def other(x):\n    return {'a': 1}", None),
        ("def run(:", None),
        ("def run(x):\n    return {'a': 1}\ndef run(x):\n    return {'z': 1}", ["z"]),
    ],
)
def test_infer_code_fields(code: str, fields: list[str] | None) -> None:
    assert infer_code_fields(code) == fields


def test_dependencies() -> None:
    duck = loads_plan(DUCK_YAML)
    assert dependencies(duck, "extract") == []
    assert dependencies(duck, "extract_vote") == ["extract"]
    assert dependencies(duck, "compute") == ["extract_vote"]


def test_topo_order_keeps_file_order_for_ties() -> None:
    plan = _plan(
        CodeNode(id="late", inputs={"x": "b.y", "z": "a.y"}, code=""),
        CodeNode(id="b", inputs={"q": "input.q"}, code=""),
        CodeNode(id="a", code=""),
        LlmNode(id="free", prompt="hi"),
    )
    assert topo_order(plan) == ["b", "a", "late", "free"]


def test_topo_order_puts_wrapped_nodes_before_their_consensus_node() -> None:
    duck = loads_plan(DUCK_YAML)
    assert topo_order(duck) == ["extract", "extract_vote", "compute"]
    reversed_nodes = duck.model_copy(update={"nodes": duck.nodes[::-1]})
    assert topo_order(reversed_nodes) == ["extract", "extract_vote", "compute"]


def test_topo_order_refuses_cycles() -> None:
    plan = _plan(
        LlmNode(id="a", inputs={"x": "b.text"}, prompt="{{ x }}"),
        LlmNode(id="b", inputs={"x": "a.text"}, prompt="{{ x }}"),
    )
    with pytest.raises(PlanError) as info:
        topo_order(plan)
    assert info.value.problems[0].message.startswith("dependency cycle a -> b -> a")


def test_find_cycles_reports_each_component_once_in_file_order() -> None:
    plan = _plan(
        LlmNode(id="ok", prompt="x"),
        LlmNode(id="d", inputs={"x": "e.text"}, prompt="x"),
        LlmNode(id="c", inputs={"x": "d.text", "self": "c.text"}, prompt="x"),
        LlmNode(id="e", inputs={"x": "c.text"}, prompt="x"),
        LlmNode(id="s", inputs={"x": "s.text"}, prompt="x"),
    )
    assert find_cycles(plan) == [["d", "e", "c"], ["s"]]


def test_deep_chain_does_not_hit_recursion_limits() -> None:
    nodes = [CodeNode(id="n0", code="")]
    nodes += [CodeNode(id=f"n{i}", inputs={"x": f"n{i - 1}.y"}, code="") for i in range(1, 3000)]
    plan = _plan(*reversed(nodes))
    order = topo_order(plan)
    assert order[0] == "n0" and order[-1] == "n2999"


def test_template_variables() -> None:
    text = "{{ a }} {% for x in items %}{{ x }}{{ loop.index }}{% endfor %}{% set y = 1 %}{{ y }}"
    assert template_variables(text) == {"a", "items"}
    assert template_variables("{{ range(3) | list }} {{ b.c }}") == {"b"}
    with pytest.raises(PlanError) as info:
        template_variables("line one\n{% if x %}")
    assert info.value.problems[0].line == 2
