"""End to end: compile the duck-eggs task with the real local teacher and student.

Teacher ``local:qwen2.5-coder-1.5b``, student ``local:smollm2-135m`` (offline defaults), m = 3
training rows with GSM-Hard-sized numbers, 20 held-out rows (tests/fixtures). Run it under
the model lock::

    OMP_WAIT_POLICY=PASSIVE flock /tmp/sgde-model.lock \
        pytest tests/integration/test_compile_real.py -m slow -s

or as a script (prints the figures as JSON)::

    OMP_WAIT_POLICY=PASSIVE flock /tmp/sgde-model.lock \
        python tests/integration/test_compile_real.py [STUDENT]
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TASK = "Answer the math word problem with one number."
TEACHER = "local:qwen2.5-coder-1.5b"
STUDENT = "local:smollm2-135m"


def _rows(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line]


async def run_compile(
    workdir: Path, *, student: str = STUDENT, cache_dir: Path | None = None
) -> dict[str, Any]:
    """Compile, then score the initial and compiled plans on the held-out rows."""
    from sgde.models import ModelHub, ModelSettings
    from sgde.optimize import CompileSettings, compile_async
    from sgde.optimize.coldstart import cold_start
    from sgde.runtime.executor import Executor
    from sgde.runtime.numbers import numbers_match
    from sgde.runtime.sandbox import SandboxPool

    train, test = _rows("duck_eggs_train.jsonl"), _rows("duck_eggs_test.jsonl")
    settings = ModelSettings(
        cache_dir=cache_dir or workdir / "cache",
        use_cache={"teacher": True, "student": True},
        n_threads=2,
    )
    started = time.monotonic()
    async with ModelHub(settings) as hub, SandboxPool(workers=1) as sandbox:
        bindings = hub.bind({"teacher": TEACHER, "student": student})
        result = await compile_async(
            TASK,
            trainset=train,
            teacher=bindings["teacher"],
            student=bindings["student"],
            sandbox=sandbox,
            # the fixture rows also carry id, template_id, values...: only question is an input
            settings=CompileSettings(
                max_iters=3, repeats=2, input_fields=("question",), output_fields=("answer",)
            ),
            checkpoint_dir=workdir / "checkpoint",
            events=lambda e: print(f"[{e.iteration}] {e.kind}: {e.message}", flush=True),
        )
        compile_s = time.monotonic() - started
        result.report.write(workdir / "report")
        executor = Executor(bindings, sandbox=sandbox)

        async def accuracy(plan: Any) -> float:
            results = await executor.run_batch(plan, test)
            right = sum(
                r.ok and numbers_match(r.outputs.get("answer"), row["answer"])
                for r, row in zip(results, test, strict=True)
            )
            return right / len(test)

        # "before": the plan the compile started from (the cached cold-start draft)
        from sgde.optimize.teacher import Teacher
        from sgde.task import infer_task

        spec = infer_task(train, description=TASK, inputs=["question"], outputs=["answer"])
        initial, _ = await cold_start(
            spec, train, teacher=Teacher(bindings["teacher"]), settings=CompileSettings()
        )
        before = await accuracy(initial)
        after = await accuracy(result.plan)
    report = result.report
    return {
        "student": student,
        "compile_wall_s": round(compile_s, 1),
        "losses": [report.initial_loss]
        + [r.candidate_loss if r.accepted else r.loss_before for r in report.iterations],
        "iterations": [
            {"edit": r.edit, "accepted": r.accepted, "loss": r.candidate_loss, "why": r.why}
            for r in report.iterations
        ],
        "final_loss": report.final_loss,
        "stop": report.stop_reason,
        "teacher_tokens": report.usage["teacher"]["total_tokens"],
        "student_tokens": report.usage["student"]["total_tokens"],
        "held_out_before": before,
        "held_out_after": after,
        "offloaded": any(n.kind == "code" for n in result.plan.nodes),
        "plan_nodes": [n.id for n in result.plan.nodes],
    }


@pytest.mark.slow
def test_compile_duck_eggs_with_local_models(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    from sgde.models.local import model_path

    try:
        model_path("qwen2.5-coder-1.5b")
        model_path("smollm2-135m")
    except Exception as exc:  # the models are an optional extra
        pytest.skip(f"local models not installed: {exc}")
    figures = asyncio.run(run_compile(tmp_path))
    print(json.dumps(figures, indent=1))
    assert figures["offloaded"], figures
    # The extraction is scored in its prompt variants and the one SmolLM2 reads best is kept.
    # 2026-12-02, two runs: training loss 0 in both; held-out 0.0 -> 0.75 ("snippet" kept,
    # node error 0 vs 0.083 / 0.167 for the description variants) and 0.0 -> 0.80
    # ("described" and "snippet" both 0, the shorter "described" kept).
    assert figures["final_loss"] == 0.0, figures
    assert figures["held_out_after"] >= 0.7, figures
    assert figures["compile_wall_s"] < 25 * 60


if __name__ == "__main__":
    target = Path(os.environ.get("SGDE_COMPILE_WORKDIR", "/tmp/sgde-compile-real"))
    target.mkdir(parents=True, exist_ok=True)
    chosen = sys.argv[1] if len(sys.argv) > 1 else STUDENT
    print(json.dumps(asyncio.run(run_compile(target, student=chosen)), indent=1))
