"""`sgde serve` with the real SmolLM2 through a real uvicorn server on 127.0.0.1.

Run under the model lock::

    OMP_WAIT_POLICY=PASSIVE flock /tmp/sgde-model.lock \
        pytest tests/integration/test_serve_real.py -m slow -s
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
QUESTION = (
    "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
    "muffins for her friends every day with four. She sells the remainder at the farmers' market "
    "daily for $2 per fresh duck egg. How much in dollars does she make every day at the "
    "farmers' market?"
)
# `sgde serve` itself (the typer command), whichever way the CLI registers it.
CLI = "import typer; from sgde.cli.serve_cmd import serve; typer.run(serve)"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_serve_duck_eggs_with_smollm2(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    port = _free_port()
    log = tmp_path / "requests.sqlite"
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "SGDE_ADMIN_TOKEN": "t0ken"}
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI, str(ROOT / "examples" / "duck_eggs.yaml"),
         "--model", "student=local:smollm2-135m", "--port", str(port), "--threads", "2",
         "--log", str(log)],
        cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(url + "/readyz", timeout=2)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.5)
        assert ready.json()["models_loaded"] and ready.json()["sandbox_warm"] is True
        r = httpx.post(
            url + "/v1/plans/duck-eggs/run", json={"inputs": {"question": QUESTION}}, timeout=300
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["outputs"] == {"answer": 18}
        assert body["version"].startswith("sha256:")
        assert body["usage"]["by_role"]["student"]["calls"] == 5  # the consensus fan-out
        bad = httpx.post(url + "/v1/plans/duck-eggs/run", json={"inputs": {}}, timeout=10)
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "inputs.question"
        metrics = httpx.get(url + "/metrics", timeout=10).text
        assert 'sgde_tokens_total{kind="output",plan="duck-eggs",role="student"' in metrics
        logged = httpx.get(
            f"{url}/v1/log/{body['request_id']}", headers={"Authorization": "Bearer t0ken"}
        )
        assert logged.json()["outputs"] == {"answer": 18}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
    stderr = proc.stderr.read() if proc.stderr else ""
    assert f"version={body['version'][7:19]} status=200" in stderr
