"""The Ray engine on a local Ray: workers build their own (fake) backends from specs.

Slow (starting Ray takes several seconds); skipped when ray is not installed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _bench_fakes import SGDE_PLAN, STUDENT

from sgde.evaluation.baselines import get_method
from sgde.evaluation.baselines.base import Prepared
from sgde.evaluation.engines import RayEngine, WorkerSpec, evaluate_with_engine
from sgde.models import ModelSettings

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
ROWS = [
    {"id": f"r{i}", "question": f"What is {10 + i} plus 3?", "answer": 13 + i} for i in range(8)
]


@pytest.fixture(scope="module")
def ray_engine() -> Iterator[RayEngine]:
    ray: Any = pytest.importorskip("ray")
    env_path = os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])
    spec = WorkerSpec(
        models={"student": STUDENT},
        model_settings=ModelSettings().model_dump(mode="json"),
        bindings_factory="_bench_fakes:ray_bindings",
    )
    engine = RayEngine(
        spec,
        chunks=2,
        init_kwargs={
            "num_cpus": 2,
            "runtime_env": {"env_vars": {"PYTHONPATH": env_path, "SGDE_BLOCK_REAL_MODELS": "1"}},
        },
    )
    yield engine
    ray.shutdown()


async def test_ray_engine_evaluates_a_plan(ray_engine: RayEngine) -> None:
    seen: list[str] = []
    result = await evaluate_with_engine(
        SGDE_PLAN, ROWS, ray_engine, on_item=lambda item: seen.append(item.id)
    )
    assert result.accuracy == 1.0 and result.extra["engine"] == "ray"
    assert [i.id for i in result.items] == [r["id"] for r in ROWS]
    assert sorted(seen) == sorted(r["id"] for r in ROWS)
    assert all(i.tokens > 0 for i in result.items)


async def test_ray_engine_runs_a_registry_method(ray_engine: RayEngine) -> None:
    method = get_method("direct")
    prepared = Prepared(method="direct", plan=method.build_plan([]))  # type: ignore[attr-defined]
    items = await ray_engine.run_method(method, prepared, ROWS)
    assert [i.correct for i in items] == [(10 + k) % 2 == 0 for k in range(8)]
