"""A real OpenAI-compatible server (llama_cpp.server + SmolLM2) killed in the middle of
``sgde eval``: the command ends soon with exit status 3 and the finished rows on disk;
after a restart ``--resume`` runs only the rest, and the summary equals an uninterrupted run's.

Run under the model lock on shared machines:
``OMP_WAIT_POLICY=PASSIVE flock /tmp/sgde-model.lock pytest tests/integration/test_eval_outage.py``
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from model_servers import free_port, llama_server_process

from sgde.errors import ModelNotFoundError
from sgde.models.local import model_path

pytestmark = pytest.mark.slow

N_ROWS = 50
EXIT_INCOMPLETE = 3
PLAN = """\
schema_version: 1
name: eggs-per-day
inputs: {question: string}
outputs: {answer: extract.eggs}
nodes:
  - id: extract
    kind: llm
    model: student
    inputs: {question: input.question}
    system: You copy numbers out of short texts into JSON.
    prompt: "Text: {{ question }}\\nHow many eggs do the ducks lay per day?"
    output_schema:
      type: object
      properties: {eggs: {type: integer}}
      required: [eggs]
    temperature: 0.0
    max_tokens: 16
"""


@pytest.fixture(scope="module")
def smollm2() -> Path:
    pytest.importorskip("llama_cpp", reason='needs llama-cpp-python: pip install "sgde[local]"')
    try:
        return model_path("smollm2-135m")
    except ModelNotFoundError as exc:
        pytest.skip(str(exc))


def _rows() -> list[dict[str, Any]]:
    rng = random.Random(13)
    rows = []
    for i in range(N_ROWS):
        eggs, price = rng.randint(10, 99_999), rng.randint(2, 9)
        question = f"Janet's ducks lay {eggs} eggs per day. She sells each egg for ${price}."
        rows.append({"id": f"r{i:02d}", "question": question, "answer": eggs})
    return rows


def _stable(doc: dict[str, Any]) -> dict[str, Any]:
    """An eval result without its timings."""
    out = {k: v for k, v in doc.items() if not k.startswith("latency") and k != "extra"}
    out["items"] = [{k: v for k, v in i.items() if k != "latency_s"} for i in doc["items"]]
    return out


def _row_lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    complete = path.read_bytes().rsplit(b"\n", 1)[0].decode()
    return [json.loads(line) for line in complete.splitlines()[1:] if line.strip()]


def test_killed_server_mid_eval_then_resume(smollm2: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN, encoding="utf-8")
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows()), encoding="utf-8")
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "SGDE_CACHE_DIR": str(tmp_path / "c")}
    env.pop("SGDE_BLOCK_REAL_MODELS", None)
    port = free_port()

    def sgde_eval(results: Path, *extra: str) -> subprocess.Popen[str]:
        cmd = [sys.executable, "-m", "sgde", "eval", str(plan), "--dataset", str(data)]
        cmd += ["--model", "student=openai-compatible:smollm2"]
        cmd += ["--base-url", f"http://127.0.0.1:{port}/v1", "--results", str(results)]
        cmd += ["--json", *extra]
        return subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    started = time.monotonic()
    partial = tmp_path / "partial.results.jsonl"
    with llama_server_process(smollm2, port=port, n_threads=2) as (server, _base):
        whole = sgde_eval(tmp_path / "whole.results.jsonl")
        out, err = whole.communicate(timeout=120)
        assert whole.returncode == 0, err
        uninterrupted = json.loads(out)
        assert uninterrupted["n"] == N_ROWS and uninterrupted["n_errors"] == 0
        # greedy decoding and no request cache (only the teacher is cached): deterministic
        assert uninterrupted["n_correct"] > 0

        cut = sgde_eval(partial)
        deadline = time.monotonic() + 60
        while len(_row_lines(partial)) < 8:  # a few seconds in
            assert cut.poll() is None, cut.communicate()
            assert time.monotonic() < deadline, "no row finished within 60 s"
            time.sleep(0.05)
        server.kill()
        server.wait()
        killed = time.monotonic()
        out, err = cut.communicate(timeout=60)
        ended = time.monotonic() - killed
    assert ended < 30, f"sgde eval took {ended:.1f} s to end after the server died"
    assert cut.returncode == EXIT_INCOMPLETE, err
    assert "could not run" in err and "--resume" in err
    interrupted = json.loads(out)
    assert interrupted["n_errors"] > 0 and interrupted["error_kinds"] == {
        "backend": interrupted["n_errors"]
    }
    first_error = next(i["error"] for i in interrupted["items"] if i["error_kind"])
    assert f"127.0.0.1:{port}" in first_error
    # the rows finished before the kill are on disk, identical to the uninterrupted run's
    by_id = {i["id"]: i for i in uninterrupted["items"]}
    finished = [line for line in _row_lines(partial) if line["ran"]]
    assert len(finished) >= 8
    for line in finished:
        kept = line["result"]
        assert (kept["prediction"], kept["correct"]) == (
            by_id[kept["id"]]["prediction"],
            by_id[kept["id"]]["correct"],
        )

    with llama_server_process(smollm2, port=port, n_threads=2):
        resumed = sgde_eval(partial, "--resume")
        out, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    final = json.loads(out)
    assert final["extra"]["resumed"] == len(finished)
    assert _stable(final) == _stable(uninterrupted)
    print(  # measured figures (pytest -s)
        f"\nuninterrupted {uninterrupted['n_correct']}/{N_ROWS} right; killed after "
        f"{len(finished)} rows, eval ended {ended:.1f} s after the kill; resumed "
        f"{N_ROWS - len(finished)} rows; whole test {time.monotonic() - started:.0f} s"
    )
