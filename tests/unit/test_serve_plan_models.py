"""Plans carry their student: recorded models, overrides with a warning, run_sync, sgde run."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit._serve_fakes import duck_plan, student

import sgde
from sgde.errors import UsageError
from sgde.models.plan_models import plan_model_targets, recorded_models, run_sync, same_model
from sgde.plan import Plan


def _with(metadata: dict[str, Any]) -> Plan:
    return duck_plan().model_copy(update={"metadata": metadata})


def test_recorded_models_from_compile_provenance_and_explicit_models() -> None:
    assert recorded_models(duck_plan()) == {}
    compiled = _with({"compile": {"student": "local:smollm2-135m", "teacher": "local:x"}})
    assert recorded_models(compiled) == {"student": "local:smollm2-135m"}
    explicit = _with({"compile": {"student": "local:a"}, "models": {"student": "local:b"}})
    assert recorded_models(explicit) == {"student": "local:b"}


def test_recorded_student_is_the_default_and_a_different_one_warns() -> None:
    plan = _with({"compile": {"student": "local:smollm2-135m"}})
    choice = plan_model_targets(plan)
    assert choice.names() == {"student": "local:smollm2-135m"}
    assert choice.from_plan == {"student"} and choice.warnings == ()
    same = plan_model_targets(plan, {"student": "local:smollm2-135m"})
    assert same.warnings == ()
    other = plan_model_targets(plan, {"student": "local:qwen2.5-coder-0.5b", "judge": "x:y"})
    assert other.names() == {"student": "local:qwen2.5-coder-0.5b"}
    assert "compiled for student=local:smollm2-135m" in other.warnings[0]
    assert "does not use role(s) judge" in other.warnings[1]
    with pytest.raises(UsageError, match="needs a model for role\\(s\\) student"):
        plan_model_targets(duck_plan())
    assert same_model("local:smollm2-135m", " local:smollm2-135m")
    assert not same_model("local:smollm2-135m", "openai:gpt-4o")


def test_run_sync_runs_a_plan_in_one_call_and_warns_on_override() -> None:
    result = sgde.run_sync(duck_plan(), {"question": "9 eggs"}, models={"student": student()})
    assert result.ok and result.outputs == {"answer": 18}
    plan = _with({"models": {"student": "local:smollm2-135m"}})
    with pytest.warns(UserWarning, match="compiled for student=local:smollm2-135m"):
        again = run_sync(plan, {"question": "2 eggs"}, models={"student": student()})
    assert again.outputs == {"answer": 4}


async def test_run_sync_inside_a_loop_names_the_async_variant() -> None:
    with pytest.raises(UsageError, match="run_plan_async"):
        run_sync(duck_plan(), {"question": "1"}, models={"student": student()})


def test_sgde_run_uses_the_recorded_student(monkeypatch: pytest.MonkeyPatch) -> None:
    from sgde.cli import run_cmd

    plan = _with({"compile": {"student": "local:smollm2-135m"}})
    assert run_cmd._model_targets(plan, None) == {"student": "local:smollm2-135m"}
    assert run_cmd._model_targets(plan, ["student=openai:gpt-4o"]) == {"student": "openai:gpt-4o"}
