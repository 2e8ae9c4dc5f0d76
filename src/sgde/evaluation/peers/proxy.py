"""A metering proxy in front of a model server: counts every call a peer makes, caps them.

The peer talks to ``http://127.0.0.1:PORT/v1`` of a :class:`MeteringProxy`, which forwards
to the real server (llama.cpp's) and reads ``usage`` from each answer. The counts are sgde's
own, independent of what the peer reports about itself. While the :class:`Meter` is in its
``compile`` phase, a call that would start after the shared token budget is spent is refused
with HTTP 400 ``sgde peer budget exhausted`` (not 429: clients would retry it), so a peer
gets exactly the budget every other method gets, however its own settings are chosen.
Every request body also gets ``repeat_penalty: 1.0`` (llama.cpp's server defaults to 1.1,
which corrupts copied numbers) and a ``max_tokens`` no larger than the role's cap.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sgde.runtime.backend import Usage

__all__ = ["BUDGET_MESSAGE", "Meter", "MeteringProxy"]

BUDGET_MESSAGE = "sgde peer budget exhausted"


@dataclass
class Meter:
    """Calls and tokens per (phase, role), shared by the proxies of one peer run.

    Attributes:
        budget: Token cap (prompt + completion, every role) of the ``compile`` phase, or None.
        phase: ``"compile"`` or ``"predict"``.
        usage: ``{phase: {role: Usage}}``.
        refused: Calls refused because the budget was spent.
        failed: Calls the upstream server answered with an error.
    """

    budget: int | None = None
    phase: str = "compile"
    usage: dict[str, dict[str, Usage]] = field(default_factory=dict)
    refused: int = 0
    failed: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def spent(self, phase: str = "compile") -> int:
        """Tokens spent in ``phase``."""
        with self._lock:
            return sum(u.total_tokens for u in self.usage.get(phase, {}).values())

    def admit(self) -> bool:
        """Whether a new call may start (False counts a refusal)."""
        with self._lock:
            if self.phase != "compile" or self.budget is None:
                return True
            total = sum(u.total_tokens for u in self.usage.get("compile", {}).values())
            if total < self.budget:
                return True
            self.refused += 1
            return False

    def record(self, role: str, body: dict[str, Any] | None) -> Usage:
        """Add one answered call of ``role`` (usage from its body; missing usage counts 0)."""
        raw = (body or {}).get("usage") or {}
        usage = Usage(
            prompt_tokens=int(raw.get("prompt_tokens") or 0),
            completion_tokens=int(raw.get("completion_tokens") or 0),
            calls=1,
        )
        with self._lock:
            roles = self.usage.setdefault(self.phase, {})
            roles[role] = roles.get(role, Usage()) + usage
        return usage

    def fail(self) -> None:
        """Count a call the upstream answered with an error."""
        with self._lock:
            self.failed += 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready counts."""
        with self._lock:
            return {
                "budget_tokens": self.budget,
                "usage": {
                    phase: {role: u.to_dict() for role, u in roles.items()}
                    for phase, roles in self.usage.items()
                },
                "refused_calls": self.refused,
                "failed_calls": self.failed,
            }


class MeteringProxy:
    """An HTTP proxy for one role (``student``/``teacher``) on 127.0.0.1.

    Args:
        role: Role name the calls are counted under.
        upstream: The server's ``/v1`` base URL.
        max_tokens: Completion cap of every call (clients that send only OpenAI's newer
            ``max_completion_tokens``, which llama.cpp's server ignores, would otherwise let
            a small model ramble up to the context size).
        meter: Shared counts.
        timeout_s: Per forwarded request.
    """

    def __init__(
        self,
        role: str,
        upstream: str,
        meter: Meter,
        *,
        max_tokens: int | None = None,
        timeout_s: float = 900.0,
    ) -> None:
        self.role = role
        self.max_tokens = max_tokens
        self.upstream = upstream.rstrip("/")
        self.meter = meter
        self.timeout_s = timeout_s
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                proxy._forward(self, None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                proxy._forward(self, self.rfile.read(length))

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"peer-proxy-{role}", daemon=True
        )

    def __enter__(self) -> MeteringProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def _path(self, handler: BaseHTTPRequestHandler) -> str:
        path = handler.path
        return path[3:] if path.startswith("/v1") else path

    def _forward(self, handler: BaseHTTPRequestHandler, raw: bytes | None) -> None:
        completion = raw is not None and "completions" in handler.path
        if completion:
            if not self.meter.admit():
                error = {"error": {"message": BUDGET_MESSAGE, "type": "budget_exhausted"}}
                self._send(handler, 400, json.dumps(error).encode())
                return
            raw = _with_defaults(raw or b"{}", self.max_tokens)
        request = urllib.request.Request(
            self.upstream + self._path(handler),
            data=raw,
            method="POST" if raw is not None else "GET",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                status, body = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            status = 502
            body = json.dumps({"error": {"message": f"model server: {exc}"}}).encode()
        if completion:
            if status == 200:
                self.meter.record(self.role, _json(body))
            else:
                self.meter.fail()
        self._send(handler, status, body)

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            handler.close_connection = True  # the peer gave up waiting (its own timeout)


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _with_defaults(raw: bytes, max_tokens: int | None) -> bytes:
    data = _json(raw)
    if data is None:
        return raw
    data.setdefault("repeat_penalty", 1.0)
    asked = data.pop("max_completion_tokens", None)
    limit = data.get("max_tokens") or asked
    if max_tokens is not None:
        limit = min(int(limit), max_tokens) if limit else max_tokens
    if limit:
        data["max_tokens"] = int(limit)
    return json.dumps(data).encode()
