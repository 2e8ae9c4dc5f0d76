"""Fakes for the peer-runner unit tests: an OpenAI-compatible upstream, fake servers, a fake
worker program speaking the peer protocol."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class Upstream:
    """A chat-completions endpoint answering ``content`` with fixed usage (10 + 5 tokens),
    or ``status`` errors while ``fail`` is set. ``bodies`` records request bodies."""

    def __init__(self, content: str = "The answer is 42") -> None:
        self.content = content
        self.fail: int | None = None
        self.bodies: list[dict[str, Any]] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._reply(200, {"data": [{"id": "local"}]})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                upstream.bodies.append(json.loads(self.rfile.read(length) or b"{}"))
                if upstream.fail is not None:
                    self._reply(upstream.fail, {"error": {"message": "boom"}})
                    return
                self._reply(
                    200,
                    {
                        "choices": [
                            {"message": {"role": "assistant", "content": upstream.content}}
                        ],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 5},
                    },
                )

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> Upstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class FakeServer:
    """A model 'server' that is the shared upstream; records start/stop."""

    def __init__(self, upstream: Upstream, model: Path, events: list[str]) -> None:
        self.upstream = upstream
        self.model = model
        self.events = events

    def start(self) -> str:
        self.events.append(f"start {self.model.name}")
        return self.upstream.base_url

    def stop(self) -> None:
        self.events.append(f"stop {self.model.name}")


WORKER = r"""
import json, sys, urllib.request
MARK = "@@sgde-peer@@ "
def send(m):
    sys.stdout.write(MARK + json.dumps(m) + "\n"); sys.stdout.flush()
def call(url, n):
    for _ in range(n):
        req = urllib.request.Request(url + "/chat/completions", data=json.dumps(
            {"messages": [{"role": "user", "content": "hi"}]}).encode(),
            headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(req).read()
        except Exception as exc:
            print("call failed:", exc)
job = json.loads(sys.stdin.readline())
mode = job["settings"].get("mode", "ok")
print("peer noise on stdout")
if mode == "crash":
    sys.stderr.write("Traceback: the peer blew up\n"); sys.exit(3)
if mode == "fail":
    send({"op": "failed", "error": "AdapterParseError: no [[ ## answer ## ]]"}); sys.exit(0)
call(job["teacher"]["base_url"], job["settings"].get("teacher_calls", 2))
call(job["student"]["base_url"], job["settings"].get("student_calls", 3))
send({"op": "compiled", "program": {"instructions": "think"}, "notes": ["n1"], "seconds": 0.5})
for line in sys.stdin:
    msg = json.loads(line)
    if msg["op"] == "close":
        break
    if mode == "die_on_predict":
        sys.exit(4)
    call(job["student"]["base_url"], 1)
    send({"op": "prediction", "outputs": {"answer": "so " + str(sorted(msg["row"]))},
          "error": None})
"""


def write_worker(tmp_path: Path) -> Path:
    path = tmp_path / "fake_worker.py"
    path.write_text(WORKER, encoding="utf-8")
    return path
