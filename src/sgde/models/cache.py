"""A persistent request cache in SQLite.

The key is a sha256 over the model name, the endpoint that serves it (the base URL of an
HTTP backend: two servers with the same model id do not share entries) and
:meth:`ChatRequest.cache_key_data` (messages, sampling parameters, schema, stop sequences and
``sample_index``): the samples of one consensus node have distinct keys and differ, while a
rerun replays them exactly.

Keys of backends without an endpoint (embedded local models, whose weights the name pins by
sha256) are unchanged from earlier versions, so existing caches stay valid for them; entries
of HTTP backends written before the endpoint was part of the key are never matched again
(``sgde models cache --clear`` removes them). The
database lives in the user cache directory (``$SGDE_CACHE_DIR`` overrides it) and is safe
to share between processes (WAL mode, busy timeout).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from sgde.errors import UsageError
from sgde.runtime.backend import ChatRequest, ChatResponse, Usage

__all__ = ["CACHE_FILENAME", "RequestCache", "backend_endpoint", "cache_key"]

CACHE_FILENAME = "requests.sqlite"
_KEY_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    usage TEXT NOT NULL,
    finish_reason TEXT,
    created REAL NOT NULL
)
"""


def backend_endpoint(backend: object) -> str | None:
    """The endpoint a backend talks to (``endpoint`` attribute), or None when it has none."""
    endpoint = getattr(backend, "endpoint", None)
    return str(endpoint) if endpoint else None


def cache_key(model_name: str, request: ChatRequest, *, endpoint: str | None = None) -> str:
    """Stable hex key of one request to one model.

    Args:
        model_name: The ``provider:model`` name.
        request: The request.
        endpoint: Where the model is served (an HTTP base URL); None for embedded models.
    """
    payload: dict[str, object] = {"v": _KEY_VERSION, "model": model_name}
    if endpoint:
        payload["endpoint"] = endpoint.rstrip("/")
    payload.update(request.cache_key_data())
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class RequestCache:
    """Responses stored by request key.

    Args:
        path: The SQLite file (created with its directory on first use).
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    @classmethod
    def in_dir(cls, directory: Path) -> RequestCache:
        """The cache file ``requests.sqlite`` in ``directory``."""
        return cls(Path(directory) / CACHE_FILENAME)

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(_SCHEMA)
                conn.commit()
            except (OSError, sqlite3.Error) as exc:
                raise UsageError(
                    f"cannot open the request cache {self.path}: {exc}",
                    hint="set SGDE_CACHE_DIR to a writable directory, or disable caching",
                ) from None
            self._conn = conn
        return self._conn

    def get(self, key: str) -> ChatResponse | None:
        """The stored response for ``key`` (marked ``cached=True``), or ``None``."""
        with self._lock:
            row = (
                self._connect()
                .execute(
                    "SELECT model, text, usage, finish_reason FROM responses WHERE key = ?", (key,)
                )
                .fetchone()
            )
        if row is None:
            return None
        model, text, usage_json, finish_reason = row
        usage: dict[str, Any] = json.loads(usage_json)
        return ChatResponse(
            text=text,
            usage=Usage(
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                calls=int(usage.get("calls", 1)),
                usd=float(usage.get("usd", 0.0)),
            ),
            model=model,
            latency_s=0.0,
            cached=True,
            finish_reason=finish_reason,
        )

    def put(self, key: str, response: ChatResponse) -> None:
        """Store ``response`` under ``key`` (replacing an older entry)."""
        usage = {
            "prompt_tokens": response.usage.prompt_tokens,
            "completion_tokens": response.usage.completion_tokens,
            "calls": response.usage.calls,
            "usd": response.usage.usd,
        }
        with self._lock:
            conn = self._connect()
            conn.execute(
                "INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?)",
                (
                    key,
                    response.model,
                    response.text,
                    json.dumps(usage),
                    response.finish_reason,
                    time.time(),
                ),
            )
            conn.commit()

    def __len__(self) -> int:
        with self._lock:
            (count,) = self._connect().execute("SELECT COUNT(*) FROM responses").fetchone()
        return int(count)

    def clear(self) -> int:
        """Delete every entry; returns how many there were."""
        with self._lock:
            conn = self._connect()
            count = conn.execute("DELETE FROM responses").rowcount
            conn.commit()
        return int(count)

    def close(self) -> None:
        """Close the database connection (reopened on next use)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
