"""Production feedback with the real local models: serve a naive plan (the student answers the
word problem directly, which SmolLM2 cannot do), log the requests, label them, recompile from the
log with the local teacher, and check that accuracy on the labelled rows goes up.

Run under the model lock::

    OMP_WAIT_POLICY=PASSIVE flock /tmp/sgde-model.lock \
        pytest tests/integration/test_serve_recompile.py -m slow -s
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
STUDENT = "local:smollm2-135m"
TEACHER = "local:qwen2.5-coder-1.5b"

NAIVE = """
schema_version: 1
name: duck-eggs-naive
description: The student answers the word problem in one call (no offload yet).
inputs: {question: string}
outputs: {answer: solve.answer}
nodes:
  - id: solve
    kind: llm
    inputs: {question: input.question}
    system: You solve math word problems.
    prompt: "Problem: {{ question }}\\n\\nGive the final answer as a number."
    output_schema: {type: object, properties: {answer: {type: number}}, required: [answer]}
    max_tokens: 64
metadata:
  models: {student: local:smollm2-135m}
"""


def _rows() -> list[dict[str, Any]]:
    path = FIXTURES / "duck_eggs_train.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line]


async def serve_label_recompile(workdir: Path) -> dict[str, Any]:
    """Serve the naive plan in-process, log 3 requests, label them, recompile from the log."""
    from sgde.models import ModelHub, ModelSettings
    from sgde.optimize import CompileSettings
    from sgde.planfile import loads_plan, save_plan
    from sgde.runtime.sandbox import SandboxPool
    from sgde.serve.log import RequestLog
    from sgde.serve.recompile import recompile_from_log
    from sgde.serve.registry import Registry
    from sgde.serve.service import PlanService
    from sgde.serve.settings import ServeSettings

    plan = loads_plan(NAIVE)
    save_plan(plan, workdir / "naive.yaml")
    log = RequestLog(workdir / "requests.sqlite")
    settings = ModelSettings(
        cache_dir=workdir / "cache", use_cache={"teacher": True, "student": True}, n_threads=2
    )
    started = time.monotonic()
    async with ModelHub(settings) as hub:
        registry = Registry([workdir / "naive.yaml"])
        registry.load()
        service = PlanService(registry, ServeSettings(watch_interval_s=0), hub=hub, log=log)
        await service.start()
        try:
            ids = [
                (await service.run("duck-eggs-naive", {"question": row["question"]})).request_id
                for row in _rows()
            ]
        finally:
            await service.aclose()
        for rid, row in zip(ids, _rows(), strict=True):
            log.label(rid, {"answer": row["answer"]})
        async with SandboxPool(workers=1) as sandbox:
            bindings = hub.bind({"teacher": TEACHER, "student": STUDENT})
            outcome = await recompile_from_log(
                plan,
                log,
                teacher=bindings["teacher"],
                student=bindings["student"],
                sandbox=sandbox,
                settings=CompileSettings(max_iters=3, repeats=1),
                events=lambda e: print(f"[{e.iteration}] {e.kind}: {e.message}", flush=True),
            )
    log.close()
    save_plan(outcome.new_plan, workdir / "recompiled.yaml")
    return {
        **outcome.to_dict(),
        "wall_s": round(time.monotonic() - started, 1),
        "new_nodes": [f"{n.id}:{n.kind}" for n in outcome.new_plan.nodes],
    }


@pytest.mark.slow
def test_recompile_from_the_log_raises_accuracy_on_the_labelled_rows(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    figures = asyncio.run(serve_label_recompile(tmp_path))
    print(json.dumps(figures, indent=1))
    assert figures["labelled_rows"] == 3
    assert figures["new_accuracy"] >= figures["old_accuracy"] + 0.3, figures
    assert figures["new_version"] != figures["old_version"]


if __name__ == "__main__":
    target = Path(os.environ.get("SGDE_RECOMPILE_WORKDIR", "/tmp/sgde-recompile-real"))
    target.mkdir(parents=True, exist_ok=True)
    print(json.dumps(asyncio.run(serve_label_recompile(target)), indent=1))
