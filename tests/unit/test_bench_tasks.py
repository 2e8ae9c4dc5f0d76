"""Bench configs with typed tasks: task families and datasets, typed methods and scoring."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from _bench_fakes import STUDENT, TEACHER, fake_deps, mapping_rows

from sgde.errors import UsageError
from sgde.evaluation.baselines.typed import typed_direct_plan
from sgde.evaluation.bench import BenchConfig, run_bench_async
from sgde.evaluation.bench_config import load_bench_config
from sgde.evaluation.sgde_method import resolve_method
from sgde.evaluation.tasks import get_family
from sgde.optimize.report import CompileReport
from sgde.plan.model import Plan
from sgde.runtime.backend import ChatRequest
from sgde.task import TaskSpec

_TEXT = re.compile(r"^text: (.*)$", re.MULTILINE)


def _rectangle_reply(request: ChatRequest) -> dict[str, Any]:
    """Right for every FAKE-SGDE plan; else right only when the first side is even."""
    text = next((m.group(1) for msg in request.messages for m in _TEXT.finditer(msg.content)), "")
    numbers = [int(x) for x in re.findall(r"\d+", text)][:2] or [1, 1]
    a, b = (numbers + numbers)[:2]
    right = "FAKE-SGDE" in request.messages[0].content or a % 2 == 0
    area = a * b if right else a * b + 1
    return {"area": area, "perimeter": 2 * (a + b), "is_square": a == b}


class _TypedCompiler:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, start: Any, **kwargs: Any) -> Any:
        self.calls.append({"start": start, **kwargs})
        spec: TaskSpec = kwargs["task"]
        plan = typed_direct_plan(spec, name="fake-typed-sgde")
        node = plan.nodes[0].model_copy(update={"system": "FAKE-SGDE: answer exactly."})
        plan = plan.model_copy(update={"nodes": [node]})
        report = CompileReport(plan_name=plan.name, m=len(kwargs["trainset"]), final_loss=0.0)
        return SimpleNamespace(plan=plan, report=report)


def _deps(compiler: _TypedCompiler) -> Any:
    from sgde.models import ModelHub
    from sgde.testing import FunctionBackend

    deps = fake_deps()
    deps.compile_fn = compiler

    def resolver(name: str, settings: Any) -> FunctionBackend:
        return FunctionBackend(_rectangle_reply, name=name)

    deps.make_hub = lambda settings: ModelHub(settings, resolver=resolver)
    return deps


async def test_a_family_runs_with_typed_methods_and_scoring(tmp_path: Path) -> None:
    config = BenchConfig.model_validate(
        {
            "name": "typed",
            "student": STUDENT,
            "teacher": TEACHER,
            "tasks": ["rectangle"],
            "m": [3],
            "methods": ["direct", "student", "sgde"],
            "method_options": {"student": {"draft": "minimal"}},
            "n_test": 10,
        }
    )
    compiler = _TypedCompiler()
    outcome = await run_bench_async(config, tmp_path, deps=_deps(compiler))
    spec = get_family("rectangle").spec()
    assert compiler.calls[0]["task"] == spec
    assert compiler.calls[0]["start"] == spec.description
    trainset = compiler.calls[0]["trainset"]
    assert set(trainset[0]) == {"id", "text", "area", "perimeter", "is_square"}
    sgde = mapping_rows(outcome.results, "sgde")[0]
    direct = mapping_rows(outcome.results, "direct")[0]
    student = mapping_rows(outcome.results, "student")[0]
    assert sgde["accuracy"] == 1.0 and sgde["n_items"] == 10
    assert 0.0 < direct["accuracy"] < 1.0
    assert student["accuracy"] == direct["accuracy"]  # same fake rule, one-node plans
    cell = json.loads((tmp_path / "cells" / "rectangle__m3__s0__direct.json").read_text())
    item = cell["eval"]["items"][0]
    assert set(item["gold"]) == {"area", "perimeter", "is_square"}
    test_rows = [json.loads(x) for x in (tmp_path / "data" / "rectangle__s0__test.jsonl").open()]
    assert all(r["_provenance"]["family"] == "rectangle" for r in test_rows)


async def test_a_workflow_family_compiles_from_its_plan(tmp_path: Path) -> None:
    compiler = _TypedCompiler()
    config = BenchConfig.model_validate(
        {
            "name": "flow",
            "student": STUDENT,
            "teacher": TEACHER,
            "tasks": [{"family": "refund-workflow"}],
            "m": [3],
            "methods": ["sgde"],
            "n_test": 2,
        }
    )
    await run_bench_async(config, tmp_path, deps=_deps(compiler))
    start = compiler.calls[0]["start"]
    assert isinstance(start, Plan)
    assert [n.id for n in start.nodes] == ["classify", "extract", "compute"]


def _write(tmp_path: Path, text: str, name: str = "bench.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _rows(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_dataset_items_read_relative_to_the_config(tmp_path: Path) -> None:
    sub = tmp_path / "data"
    sub.mkdir()
    rows = [{"id": i, "city": c, "country": k} for i, (c, k) in enumerate(
        [("Lyon", "France"), ("Rome", "Italy"), ("Nice", "France"), ("Milan", "Italy"),
         ("Porto", "Portugal"), ("Lille", "France"), ("Turin", "Italy")])]  # fmt: skip
    _rows(sub / "cities.jsonl", rows)
    yaml_text = (
        "name: ds\nmethods: [cot]\nm: [3]\nn_test: 3\ntasks:\n"
        "  - dataset: data/cities.jsonl\n    outputs: [country]\n    n_train: 4\n"
        "    description: The country of the city.\n"
        "  - date-add\n"
    )
    config = load_bench_config(_write(tmp_path, yaml_text))
    assert config.item_ids == ["cities", "date-add"]
    from sgde.evaluation.bench_items import generate_rows, resolve_item

    item = config.tasks[0]
    resolved = resolve_item(config, item)
    assert list(resolved.spec.inputs) == ["city"] and list(resolved.spec.outputs) == ["country"]
    train, test = generate_rows(config, item, 0, 3)
    assert [r["city"] for r in train] == ["Lyon", "Rome", "Nice"]
    assert [r["city"] for r in test] == ["Porto", "Lille", "Turin"]


def test_task_item_errors_name_the_file_and_key(tmp_path: Path) -> None:
    _rows(tmp_path / "bad.jsonl", [{"x": 1, "answer": 2}, {"x": 2}, {"x": 3, "answer": 4}])
    yaml_text = (
        "name: bad\nmethods: [cot]\nm: [1]\ntasks:\n"
        "  - family: date-ad\n"
        "  - dataset: missing.jsonl\n"
        "  - dataset: bad.jsonl\n    n_train: 2\n"
    )
    path = _write(tmp_path, yaml_text)
    with pytest.raises(UsageError) as info:
        load_bench_config(path)
    text = str(info.value)
    assert f"{path}:5: tasks.0.family: unknown task family 'date-ad'" in text
    assert f"{path}:6: tasks.1.dataset:" in text and "missing.jsonl" in text
    assert "tasks.2.dataset:" in text and "bad.jsonl:2" in text and "answer" in text
    assert "sgde synth --list" in (info.value.hint or "")
    family_types = "name: bad\nmethods: [cot]\ntasks:\n  - family: rectangle\n    types: {a: b}\n"
    with pytest.raises(UsageError) as info:
        load_bench_config(_write(tmp_path, family_types))
    assert "bench.yaml:4: tasks.0:" in str(info.value)
    assert "types: only for a dataset" in str(info.value)


def test_items_need_one_source_and_distinct_ids() -> None:
    with pytest.raises(ValueError, match="exactly one of 'family'"):
        BenchConfig.model_validate(
            {"name": "x", "methods": ["cot"], "tasks": [{"family": "a", "dataset": "b"}]}
        )
    with pytest.raises(ValueError, match="repeated: rectangle"):
        BenchConfig.model_validate(
            {"name": "x", "methods": ["cot"], "tasks": ["rectangle", {"family": "rectangle"}]}
        )


def test_gsm_only_methods_refuse_typed_tasks() -> None:
    spec = get_family("date-add").spec()
    with pytest.raises(UsageError, match="numeric questions only"):
        resolve_method("pot", task=spec)
    with pytest.raises(UsageError, match="numeric questions only"):
        resolve_method("opro", task=spec)
    for name in ("student", "direct", "cot", "fewshot-cot", "self-consistency", "pal", "ape"):
        resolve_method(name, task=spec)


def test_task_item_parts_are_named(tmp_path: Path) -> None:
    _rows(tmp_path / "rows.jsonl", [{"q": "a", "answer": "x"}] * 4)
    (tmp_path / "plan.yaml").write_text("not: [a plan\n")
    yaml_text = (
        "name: parts\nmethods: [cot]\nm: [1]\ntasks:\n"
        "  - dataset: rows.jsonl\n    name: t1\n    test: nope.jsonl\n"
        "  - dataset: rows.jsonl\n    name: t2\n    types: {answer: 'datum'}\n"
        "  - dataset: rows.jsonl\n    name: t3\n    plan: plan.yaml\n"
        "  - family: date-add\n    plan: plan.yaml\n"
    )
    with pytest.raises(UsageError) as info:
        load_bench_config(_write(tmp_path, yaml_text))
    text = str(info.value)
    assert "tasks.0.test:" in text and "nope.jsonl" in text
    assert "tasks.1.types.answer:" in text and "datum" in text
    assert "tasks.2.plan:" in text and "tasks.3.plan:" in text
