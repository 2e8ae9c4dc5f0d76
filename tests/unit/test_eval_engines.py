"""Engines: in-process evaluation, worker chunks built from serialisable specs, Ray errors."""

from __future__ import annotations

import builtins
import pickle
from pathlib import Path
from typing import Any

import pytest
from _bench_fakes import SGDE_PLAN, STUDENT, student_reply

from sgde.errors import UsageError
from sgde.evaluation.baselines import get_method
from sgde.evaluation.baselines.base import Prepared
from sgde.evaluation.engines import (
    RAY_INSTALL_HINT,
    InProcessEngine,
    RayEngine,
    WorkerSpec,
    evaluate_with_engine,
    run_worker_chunk,
    run_worker_method_chunk,
)
from sgde.evaluation.sgde_method import SgdeMethod
from sgde.models import ModelSettings
from sgde.testing import FunctionBackend

ROWS = [{"question": f"What is {10 + i} plus {7}?", "answer": 17 + i} for i in range(6)]
SPEC = WorkerSpec(
    models={"student": STUDENT},
    model_settings=ModelSettings().model_dump(mode="json"),
    bindings_factory="_bench_fakes:ray_bindings",
)


def test_worker_spec_is_plain_data() -> None:
    data = SPEC.to_dict()
    assert WorkerSpec.from_dict(pickle.loads(pickle.dumps(data))) == SPEC


async def test_inprocess_engine_evaluates_a_plan() -> None:
    engine = InProcessEngine({"student": FunctionBackend(student_reply)}, sandbox=None)
    result = await evaluate_with_engine(SGDE_PLAN, ROWS, engine)
    assert result.accuracy == 1.0 and result.extra["engine"] == "inprocess"
    assert [i.id for i in result.items] == [str(i) for i in range(6)]


async def test_inprocess_engine_runs_a_method() -> None:
    method = get_method("direct")
    engine = InProcessEngine({"student": FunctionBackend(student_reply)}, sandbox=None)
    prepared = await method.prepare(
        ROWS[:3],
        teacher=None,
        student=engine.bindings["student"],
        sandbox=None,
        budget=None,
        seed=0,
    )
    items = await engine.run_method(method, prepared, [{**r, "id": i} for i, r in enumerate(ROWS)])
    assert [i.correct for i in items] == [(10 + k) % 2 == 0 for k in range(6)]
    assert all(i.tokens > 0 for i in items)


def test_worker_chunk_builds_its_own_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    rows = [{**r, "id": f"r{i}"} for i, r in enumerate(ROWS)]
    out = run_worker_chunk(SGDE_PLAN.model_dump(mode="json"), rows, SPEC.to_dict(), 0, "none")
    assert [d["id"] for d in out] == [f"r{i}" for i in range(6)]
    assert all(d["correct"] for d in out)


def test_worker_method_chunk_rebuilds_the_method(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    prepared = Prepared(method="sgde", plan=SGDE_PLAN)
    rows = [{**r, "id": f"r{i}"} for i, r in enumerate(ROWS)]
    out = run_worker_method_chunk(
        "sgde", {}, prepared.to_dict(), rows, SPEC.to_dict(), 0, "failures"
    )
    assert all(d["correct"] for d in out)
    direct = run_worker_method_chunk(
        "direct",
        {},
        Prepared(method="direct", plan=get_method("direct").build_plan([])).to_dict(),
        rows,
        SPEC.to_dict(),
        0,
        "failures",
    )
    assert [d["correct"] for d in direct] == [(10 + k) % 2 == 0 for k in range(6)]


def test_bad_bindings_factory_is_a_usage_error() -> None:
    spec = WorkerSpec(models={"student": STUDENT}, bindings_factory="no_such_module:make")
    with pytest.raises(UsageError, match="cannot be imported"):
        run_worker_chunk(SGDE_PLAN.model_dump(mode="json"), ROWS[:1], spec.to_dict())
    spec = WorkerSpec(models={"student": STUDENT}, bindings_factory="not-dotted")
    with pytest.raises(UsageError, match="module:function"):
        run_worker_chunk(SGDE_PLAN.model_dump(mode="json"), ROWS[:1], spec.to_dict())


def test_ray_missing_gives_the_pip_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = builtins.__import__

    def no_ray(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(__import__("sys").modules, "ray", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_ray)
    monkeypatch.setattr("importlib.import_module", lambda name: no_ray(name))
    with pytest.raises(UsageError) as info:
        RayEngine(SPEC)
    assert RAY_INSTALL_HINT in str(info.value)
    assert 'pip install "sgde[ray]"' in str(info.value)


async def test_ray_engine_refuses_live_state() -> None:
    pytest.importorskip("ray")
    engine = RayEngine(SPEC, chunks=1)
    prepared = Prepared(method="x", plan=None, state=object())
    with pytest.raises(UsageError, match="inprocess"):
        await engine.run_method(SgdeMethod(), prepared, ROWS)
