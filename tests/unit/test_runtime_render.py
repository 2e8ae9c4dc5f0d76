"""Prompt rendering: sandboxed, strict, model-friendly number formatting."""

from __future__ import annotations

import pytest

from sgde.errors import ExecutionError
from sgde.runtime.render import PromptRenderer, format_value, load_prompt


def test_renders_variables_and_loops() -> None:
    r = PromptRenderer()
    text = r.render("Q: {{ q }}{% for x in xs %} {{ x }}{% endfor %}", {"q": "hi", "xs": [1, 2]})
    assert text == "Q: hi 1 2"


def test_numbers_print_without_exponent_or_trailing_zero() -> None:
    r = PromptRenderer()
    assert r.render(
        "{{ a }} {{ b }} {{ c }} {{ d }}", {"a": 12.0, "b": 1.2e7, "c": 2.5, "d": 1e-7}
    ) == ("12 12000000 2.5 0.0000001")
    assert format_value("x") == "x"


def test_tojson_is_plain_json() -> None:
    r = PromptRenderer()
    assert r.render("{{ v | tojson }}", {"v": {"a": "<b>", "é": 1}}) == '{"a": "<b>", "é": 1}'


def test_undefined_variable_is_an_error_naming_the_node() -> None:
    r = PromptRenderer()
    with pytest.raises(ExecutionError) as info:
        r.render("{{ missing }}", {"q": 1}, node_id="extract")
    message = str(info.value)
    assert "extract" in message
    assert "missing" in message
    assert "available: q" in message


def test_syntax_error_is_reported() -> None:
    with pytest.raises(ExecutionError, match="syntax error"):
        PromptRenderer().render("{{ q ", {"q": 1}, node_id="n")


def test_sandbox_blocks_unsafe_attribute_access() -> None:
    with pytest.raises(ExecutionError, match="sandbox"):
        PromptRenderer().render("{{ q.__class__.__mro__ }}", {"q": 1})


def test_type_errors_are_execution_errors() -> None:
    with pytest.raises(ExecutionError, match="TypeError"):
        PromptRenderer().render("{{ q + 1 }}", {"q": "a"})


def test_plain_text_is_returned_untouched() -> None:
    assert PromptRenderer().render("no templating here", {}) == "no templating here"


def test_packaged_json_instruction_exists() -> None:
    assert "JSON" in load_prompt("json_instruction.j2")
