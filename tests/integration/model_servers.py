"""Real servers on 127.0.0.1 for integration tests.

- :class:`FaultServer`: a tiny OpenAI-compatible chat endpoint (``http.server`` in a
  thread) that plays a script of faults: statuses with ``Retry-After``, slow answers,
  truncated and non-JSON bodies, answers without ``usage``.
- :func:`start_llama_server`: ``python -m llama_cpp.server`` on a free port, with passive
  OpenMP and few threads, waited on until it answers.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

__all__ = ["Fault", "FaultServer", "free_port", "llama_server_process", "start_llama_server"]


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def completion_body(content: str, *, usage: bool = True) -> dict[str, Any]:
    """An OpenAI chat completion response."""
    body: dict[str, Any] = {
        "id": "chatcmpl-fault",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "fault",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
    }
    if usage:
        body["usage"] = {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
    return body


@dataclass(frozen=True)
class Fault:
    """One scripted answer.

    Attributes:
        kind: ``ok``, ``status``, ``slow``, ``truncated``, ``not_json`` or ``no_usage``.
        status: HTTP status for ``status``.
        headers: Extra headers (e.g. ``{"Retry-After": "1"}``).
        delay_s: Sleep before answering (``slow``).
        content: Assistant message content of successful answers.
    """

    kind: str = "ok"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    content: str = '{"answer": 42}'


class FaultServer:
    """An OpenAI-compatible ``/v1/chat/completions`` that follows a script of faults.

    When the script runs out, every further request gets a normal answer. ``requests``
    records (time, JSON body) of each request received.
    """

    def __init__(self) -> None:
        self.script: list[Fault] = []
        self.requests: list[tuple[float, dict[str, Any]]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append((time.monotonic(), body))
                    fault = server.script.pop(0) if server.script else Fault()
                server._answer(self, fault)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> FaultServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def play(self, *faults: Fault) -> None:
        """Replace the script."""
        with self._lock:
            self.script = list(faults)
            self.requests = []

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        payload: bytes,
        headers: dict[str, str],
        *,
        declared: int | None = None,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header(
            "Content-Length", str(declared if declared is not None else len(payload))
        )
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        try:
            handler.wfile.write(payload)
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            pass

    def _answer(self, handler: BaseHTTPRequestHandler, fault: Fault) -> None:
        ok = json.dumps(completion_body(fault.content)).encode()
        if fault.kind == "slow":
            time.sleep(fault.delay_s)
            self._send(handler, 200, ok, fault.headers)
        elif fault.kind == "status":
            error = {"error": {"message": f"injected HTTP {fault.status}", "type": "fault"}}
            self._send(handler, fault.status, json.dumps(error).encode(), fault.headers)
        elif fault.kind == "truncated":
            # Promise the whole body, send half of it, then close the connection.
            self._send(handler, 200, ok[: len(ok) // 2], fault.headers, declared=len(ok))
            handler.close_connection = True
        elif fault.kind == "not_json":
            self._send(handler, 200, b"<html>upstream proxy error</html>", fault.headers)
        elif fault.kind == "no_usage":
            body = json.dumps(completion_body(fault.content, usage=False)).encode()
            self._send(handler, 200, body, fault.headers)
        else:
            self._send(handler, 200, ok, fault.headers)


@contextmanager
def start_llama_server(
    model: Path, *, n_threads: int = 2, n_ctx: int = 2048, timeout_s: float = 60.0
) -> Iterator[str]:
    """Run ``python -m llama_cpp.server`` on a free port; yield its ``/v1`` base URL.

    The process gets ``OMP_WAIT_POLICY=PASSIVE`` and is stopped (terminate, then kill)
    on exit. Its output goes to a temporary file, shown if it fails to start.
    """
    with llama_server_process(model, n_threads=n_threads, n_ctx=n_ctx, timeout_s=timeout_s) as (
        _proc,
        base,
    ):
        yield base


@contextmanager
def llama_server_process(
    model: Path,
    *,
    port: int | None = None,
    n_threads: int = 2,
    n_ctx: int = 2048,
    timeout_s: float = 60.0,
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """:func:`start_llama_server` that also yields the process (tests that kill it) and
    takes a fixed ``port`` (a restarted server keeps its URL)."""
    port = port or free_port()
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_threads", str(n_threads),
        "--n_ctx", str(n_ctx),
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}/v1"
    # The server logs ~200 KB while loading: a file, not a pipe nobody drains (it would block).
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_up(proc, log, base, timeout_s)
            yield proc, base
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_until_up(
    proc: subprocess.Popen[bytes], log: IO[bytes], base: str, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            log.seek(0)
            output = log.read().decode(errors="replace")[-4000:]
            raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}:\n{output}")
        try:
            with urllib.request.urlopen(f"{base}/models", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"llama_cpp.server did not answer within {timeout_s} s")
        time.sleep(0.2)
