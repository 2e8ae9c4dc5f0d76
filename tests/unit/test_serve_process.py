"""A real uvicorn server process on 127.0.0.1 with a fake student: the request log survives a
SIGKILL mid-load with whole rows only, and SIGTERM finishes the requests in flight."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]

SERVER = """
import sys
sys.path.insert(0, {root!r})
import uvicorn
from sgde.serve.app import create_app
from sgde.serve.log import RequestLog
from tests.unit._serve_fakes import duck_plan, make_service, student

service = make_service(
    [duck_plan()], backend=student(delay_s={delay}), max_concurrency=8, queue_size=256
)
service.log = RequestLog({log!r})
uvicorn.run(create_app(service), host="127.0.0.1", port={port}, log_level="warning",
            timeout_graceful_shutdown=30)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(tmp_path: Path, *, delay: float) -> tuple[subprocess.Popen[bytes], str, Path]:
    port, log = _free_port(), tmp_path / "requests.sqlite"
    code = SERVER.format(root=str(ROOT), delay=delay, log=str(log), port=port)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return proc, url, log
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(proc.stderr.read().decode() if proc.stderr else "server did not start")


def _in_flight(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=5).text
    line = next(ln for ln in text.splitlines() if ln.startswith("sgde_requests_in_flight "))
    return float(line.split()[1])


def _hammer(url: str, answered: list[str], stop: threading.Event, worker: int) -> None:
    with httpx.Client(base_url=url, timeout=10) as client:
        i = 0
        while not stop.is_set():
            i += 1
            try:
                r = client.post(
                    "/v1/plans/duck-eggs/run",
                    json={"inputs": {"question": f"{worker * 1000 + i} eggs"}},
                )
            except httpx.HTTPError:
                return  # the server died under us
            if r.status_code == 200:
                answered.append(r.json()["request_id"])


def test_sigkill_mid_load_loses_no_answered_request_and_leaves_whole_rows(
    tmp_path: Path,
) -> None:
    proc, url, log = _start(tmp_path, delay=0.005)
    answered: list[str] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_hammer, args=(url, answered, stop, w)) for w in range(12)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(answered) < 30 and time.monotonic() < deadline:  # mid-load, even when slow
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)
        if proc.poll() is None:
            proc.kill()
    assert len(answered) > 20, answered
    db = sqlite3.connect(log)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows: dict[str, Any] = {
        rid: (json.loads(inputs), json.loads(outputs), ok)
        for rid, inputs, outputs, ok in db.execute("SELECT id, inputs, outputs, ok FROM requests")
    }
    missing = [rid for rid in answered if rid not in rows]
    assert missing == []
    for inputs, outputs, ok in rows.values():
        number = int(inputs["question"].split()[0])
        assert ok == 1 and outputs == {"answer": 2 * number}


def test_sigterm_finishes_requests_in_flight(tmp_path: Path) -> None:
    proc, url, _log = _start(tmp_path, delay=3.0)
    results: list[int] = []

    def one(i: int) -> None:
        r = httpx.post(
            url + "/v1/plans/duck-eggs/run", json={"inputs": {"question": f"{i} eggs"}}, timeout=30
        )
        results.append(r.status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(6)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while _in_flight(url) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _in_flight(url) == 6  # all six running (8 slots), each takes ~3 s
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(timeout=30)
        # uvicorn re-raises the signal after its graceful shutdown: -SIGTERM, not a crash
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert results == [200] * 6
