"""The production log: one SQLite row per served request, and the correct answers added later.

Each request is one ``INSERT`` in its own transaction, in WAL mode with ``synchronous=FULL``,
written *before* the response is sent: a request that was answered is on disk, and a server
killed at any moment leaves whole rows only (SQLite's journal rolls back a half-written one).
Readers (``sgde log``, ``sgde recompile``) may read while the server writes.

A label is the correct output for a logged request (``{"answer": 18}``), attached through
``POST /v1/log/{id}/label`` or ``sgde log label``; ``sgde recompile --from-log`` trains on the
labelled rows.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sgde.errors import DataError, UsageError

__all__ = ["LOG_SCHEMA_VERSION", "LogRecord", "RequestLog"]

LOG_SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    ts TEXT NOT NULL,
    plan TEXT NOT NULL,
    version TEXT NOT NULL,
    caller TEXT,
    inputs TEXT NOT NULL,
    outputs TEXT,
    ok INTEGER NOT NULL,
    status INTEGER NOT NULL,
    error TEXT,
    latency_s REAL NOT NULL,
    usage TEXT,
    label TEXT,
    labelled_at TEXT
);
CREATE INDEX IF NOT EXISTS requests_plan ON requests (plan, version);
"""

_COLUMNS = (
    "id, ts, plan, version, caller, inputs, outputs, ok, status, error, latency_s, usage, "
    "label, labelled_at"
)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class LogRecord:
    """One served request.

    Attributes:
        id: Request id (also in the response and the ``X-Request-Id`` header).
        plan: Plan name.
        version: Plan version (content hash) that served it.
        inputs: The plan inputs as received (after type coercion).
        outputs: The outputs returned (empty when the run failed).
        ok: Whether the run succeeded.
        status: HTTP status of the response.
        latency_s: Time from admission to response.
        caller: The caller key, if one was sent.
        error: The error message, when not ok.
        usage: Token usage (``{"total": ..., "by_role": ...}``).
        ts: When it was logged (UTC, ISO 8601).
        label: The correct outputs, once attached.
        labelled_at: When the label was attached.
    """

    id: str
    plan: str
    version: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    ok: bool
    status: int
    latency_s: float
    caller: str | None = None
    error: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    ts: str = field(default_factory=_now)
    label: dict[str, Any] | None = None
    labelled_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "ts": self.ts,
            "plan": self.plan,
            "version": self.version,
            "caller": self.caller,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "ok": self.ok,
            "status": self.status,
            "error": self.error,
            "latency_s": round(self.latency_s, 6),
            "usage": self.usage,
            "label": self.label,
            "labelled_at": self.labelled_at,
        }


def _row(values: tuple[Any, ...]) -> LogRecord:
    (
        rid,
        ts,
        plan,
        version,
        caller,
        inputs,
        outputs,
        ok,
        status,
        error,
        latency,
        usage,
        label,
        labelled_at,
    ) = values
    return LogRecord(
        id=rid,
        ts=ts,
        plan=plan,
        version=version,
        caller=caller,
        inputs=json.loads(inputs),
        outputs=json.loads(outputs) if outputs else {},
        ok=bool(ok),
        status=int(status),
        error=error,
        latency_s=float(latency),
        usage=json.loads(usage) if usage else {},
        label=json.loads(label) if label else None,
        labelled_at=labelled_at,
    )


class RequestLog:
    """The SQLite production log (thread-safe; one connection guarded by a lock).

    Args:
        path: The database file (created with its directory's permissions if absent).
        create: Create the file when it does not exist (readers pass False).

    Raises:
        DataError: The file is not an sgde request log, or cannot be opened.
    """

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise DataError(
                "no such request log",
                path=str(self.path),
                hint="start the server with --log FILE to write one",
            )
        if create and not self.path.parent.is_dir():
            raise UsageError(
                f"cannot create the request log {self.path}: directory "
                f"{str(self.path.parent)!r} does not exist",
                hint="create the directory or pick another --log path",
            )
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            found = self._db.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
            if found is None:
                self._db.execute(
                    "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                    (str(LOG_SCHEMA_VERSION),),
                )
            elif found[0] != str(LOG_SCHEMA_VERSION):
                raise DataError(
                    f"request log schema version {found[0]} is not supported "
                    f"(this sgde reads {LOG_SCHEMA_VERSION})",
                    path=str(self.path),
                )
        except sqlite3.DatabaseError as exc:
            raise DataError(f"not an sgde request log: {exc}", path=str(self.path)) from None

    def record(self, rec: LogRecord) -> None:
        """Append one request, committed before this returns."""
        values = (
            rec.id,
            rec.ts,
            rec.plan,
            rec.version,
            rec.caller,
            json.dumps(rec.inputs, ensure_ascii=False, default=str),
            json.dumps(rec.outputs, ensure_ascii=False, default=str),
            int(rec.ok),
            rec.status,
            rec.error,
            rec.latency_s,
            json.dumps(rec.usage, default=str),
            json.dumps(rec.label) if rec.label is not None else None,
            rec.labelled_at,
        )
        with self._lock:
            self._db.execute(
                f"INSERT INTO requests ({_COLUMNS}) VALUES ({', '.join('?' * 14)})", values
            )

    async def arecord(self, rec: LogRecord) -> None:
        """:meth:`record` in a worker thread (the event loop keeps serving)."""
        await asyncio.to_thread(self.record, rec)

    def label(self, request_id: str, outputs: Mapping[str, Any]) -> LogRecord:
        """Attach the correct outputs to a logged request (replacing an earlier label).

        Raises:
            UsageError: Unknown request id, or outputs that are not a non-empty mapping.
        """
        if not isinstance(outputs, Mapping) or not outputs:
            raise UsageError('a label is a non-empty object of output values, e.g. {"answer": 18}')
        with self._lock:
            cur = self._db.execute(
                "UPDATE requests SET label = ?, labelled_at = ? WHERE id = ?",
                (json.dumps(dict(outputs), ensure_ascii=False), _now(), request_id),
            )
            if cur.rowcount == 0:
                raise UsageError(
                    f"no logged request has id {request_id!r}",
                    hint="the id is in each response (request_id) and in `sgde log list`",
                )
        found = self.get(request_id)
        assert found is not None
        return found

    def get(self, request_id: str) -> LogRecord | None:
        """One logged request by id."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM requests WHERE id = ?", (request_id,)
            ).fetchone()
        return _row(row) if row else None

    def rows(
        self,
        *,
        plan: str | None = None,
        version: str | None = None,
        labelled: bool | None = None,
        limit: int | None = None,
    ) -> list[LogRecord]:
        """Logged requests, oldest first, filtered by plan, version prefix and label."""
        where: list[str] = []
        args: list[Any] = []
        if plan is not None:
            where.append("plan = ?")
            args.append(plan)
        if version is not None:
            hexpart = version.split(":", 1)[-1]
            where.append("version LIKE ?")
            args.append(f"sha256:{hexpart}%")
        if labelled is not None:
            where.append("label IS NOT NULL" if labelled else "label IS NULL")
        sql = f"SELECT {_COLUMNS} FROM requests"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts, rowid"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            found = self._db.execute(sql, args).fetchall()
        return [_row(r) for r in found]

    def count(self) -> int:
        """Number of logged requests."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM requests").fetchone()[0])

    def close(self) -> None:
        """Close the connection (a checkpoint folds the WAL into the file)."""
        with self._lock:
            self._db.close()
