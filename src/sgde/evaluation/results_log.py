"""Per-row results on disk as rows finish, so an interrupted run can ``--resume``.

``sgde eval`` and ``sgde run --dataset`` append one JSON line per finished row to a results
file (``--results FILE``, or ``TRACE.results.jsonl`` next to ``--trace``). The first line is
a header naming what the file belongs to::

    {"schema_version": 1, "kind": "sgde-results", "command": "eval", "plan": "duck-eggs",
     "plan_hash": "sha256:…", "seed": 0, "models": {"student": "…"}, "dataset": "rows.jsonl",
     "started_at": "2026-12-02T00:40:00+00:00"}
    {"index": 0, "row_hash": "9f…", "ran": true, "result": {…}}

Each row line is written with a single ``write`` and ``fsync``-ed before the next, so a kill
or Ctrl-C loses at most the rows in flight; a torn last line (a kill mid-write) is dropped
when the file is resumed. ``ran`` is false for a row that could not run (a model endpoint,
the sandbox or the budget failed): resuming runs it again. Rows are keyed by their index
plus a hash of the row, and the header by the plan hash, seed and models: resuming against
another plan, dataset, seed or model is refused with a message saying what differs.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sgde.errors import DataError, SgdeError, UsageError

if TYPE_CHECKING:  # imported on use: `sgde run` needs only the log
    from sgde.evaluation.engines import Engine
    from sgde.evaluation.evaluate import EvalResult, ItemCallback
    from sgde.plan.model import Plan

__all__ = [
    "RESULTS_SCHEMA_VERSION",
    "ResultsLog",
    "default_results_path",
    "evaluate_to_log",
    "row_hash",
    "unique_ids",
]

RESULTS_SCHEMA_VERSION = 1
_KIND = "sgde-results"
_CHECKED = ("command", "plan_hash", "seed", "models")
"""Header fields that must match for a resume."""


def row_hash(row: Mapping[str, Any]) -> str:
    """A short, stable hash of a dataset row (key order does not matter)."""
    text = json.dumps(row, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def default_results_path(trace: Path | None) -> Path | None:
    """``TRACE.results.jsonl`` next to a ``--trace`` file (``None`` without one)."""
    if trace is None:
        return None
    stem = trace.name[: -len(".jsonl")] if trace.name.endswith(".jsonl") else trace.name
    return trace.with_name(f"{stem}.results.jsonl")


def _describe(field: str, value: Any) -> str:
    if field == "models":
        return ", ".join(f"{k}={v}" for k, v in sorted(dict(value or {}).items())) or "none"
    return str(value)


class ResultsLog:
    """An append-only results file for one run (use as a context manager).

    Args:
        path: The results file.
        header: What the run is: ``command``, ``plan``, ``plan_hash``, ``seed``, ``models``
            and ``dataset`` (the first four must match to resume).
        resume: Keep the rows already in ``path`` (it must belong to the same run);
            otherwise the file is started afresh.

    Raises:
        UsageError: ``resume`` against a file of another plan/seed/model/command, or a
            file that is not a results file.
        DataError: a line before the last is not valid JSON (the file was edited).
    """

    def __init__(self, path: Path, header: Mapping[str, Any], *, resume: bool) -> None:
        self.path = path
        self.header = {
            "schema_version": RESULTS_SCHEMA_VERSION,
            "kind": _KIND,
            **dict(header),
            "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        self._records: dict[int, dict[str, Any]] = {}
        self.dropped_torn_line = False
        self._fd: int | None = None
        if resume and path.exists():
            self._load()
        else:
            self._start()

    # -- opening -----------------------------------------------------------------------------
    def _start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(self.header, ensure_ascii=False, default=str) + "\n"
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as exc:
            raise UsageError(
                f"cannot write the results file {str(self.path)!r}: {exc.strerror or exc}",
                hint="pick a path you can write to (--results FILE)",
            ) from None
        self._fd = fd
        self._write(line)

    def _load(self) -> None:
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise UsageError(
                f"cannot read the results file {str(self.path)!r}: {exc.strerror or exc}"
            ) from None
        complete = data.rfind(b"\n") + 1  # bytes up to the last complete line
        self.dropped_torn_line = complete < len(data)
        lines = data[:complete].split(b"\n")[:-1]
        if not lines:  # empty, or only a torn header
            self._start()
            return
        header = self._parse(lines[0], 1, last=len(lines) == 1)
        if header is None:
            self._start()
            return
        self._check_header(header)
        for number, raw in enumerate(lines[1:], start=2):
            if not raw.strip():
                continue
            record = self._parse(raw, number, last=number == len(lines))
            if record is None:
                complete -= len(raw) + 1
                self.dropped_torn_line = True
                continue
            try:
                self._records[int(record["index"])] = record
            except (KeyError, TypeError, ValueError):
                raise DataError(
                    "results line has no row index",
                    path=str(self.path),
                    line=number,
                    hint="the file was edited; delete it and rerun without --resume",
                ) from None
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            os.ftruncate(fd, complete)  # drop a torn last line before appending
        except OSError as exc:
            raise UsageError(
                f"cannot append to the results file {str(self.path)!r}: {exc.strerror or exc}"
            ) from None
        self._fd = fd

    def _parse(self, raw: bytes, number: int, *, last: bool) -> dict[str, Any] | None:
        """One line as a dict; ``None`` for a broken last line (torn by a kill)."""
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            value = None
        if isinstance(value, dict):
            return value
        if last:
            return None
        raise DataError(
            "results line is not a JSON object",
            path=str(self.path),
            line=number,
            hint="the file was edited or is not an sgde results file; delete it and rerun "
            "without --resume",
        )

    def _check_header(self, header: Mapping[str, Any]) -> None:
        if header.get("kind") != _KIND or header.get("schema_version") != RESULTS_SCHEMA_VERSION:
            raise UsageError(
                f"{str(self.path)!r} is not a results file this sgde can resume "
                f"(kind {header.get('kind')!r}, schema_version {header.get('schema_version')!r})",
                hint="pass another --results path, or rerun without --resume to replace it",
            )
        for field in _CHECKED:
            want, have = self.header.get(field), header.get(field)
            if want != have:
                raise UsageError(
                    f"cannot resume from {str(self.path)!r}: it holds results of another "
                    f"{field.replace('_', ' ')} ({_describe(field, have)}, this run: "
                    f"{_describe(field, want)})",
                    hint="rerun with the same plan, dataset, --seed and --model, or without "
                    "--resume to start over (that replaces the file)",
                )

    # -- reading -----------------------------------------------------------------------------
    def finished(self, rows: Sequence[Mapping[str, Any]]) -> dict[int, dict[str, Any]]:
        """The stored results of rows that ran (index -> result), checked against ``rows``.

        Rows that could not run are left out (a resume runs them again); stored rows past
        the end of ``rows`` (a smaller ``--limit``) are ignored.

        Raises:
            UsageError: a stored row differs from the dataset's row at the same index.
        """
        done: dict[int, dict[str, Any]] = {}
        for index, record in sorted(self._records.items()):
            if index >= len(rows):
                continue
            if record.get("row_hash") != row_hash(rows[index]):
                raise UsageError(
                    f"cannot resume from {str(self.path)!r}: dataset row {index + 1} differs "
                    "from the row the results were written for (the dataset changed)",
                    hint="rerun with the dataset the results belong to, or without --resume "
                    "to start over (that replaces the file)",
                )
            if record.get("ran") and isinstance(record.get("result"), dict):
                done[index] = record["result"]
        return done

    # -- writing -----------------------------------------------------------------------------
    def append(
        self, index: int, row: Mapping[str, Any], result: Mapping[str, Any], *, ran: bool
    ) -> None:
        """Write one finished row (one ``write``, then ``fsync``)."""
        record = {"index": index, "row_hash": row_hash(row), "ran": ran, "result": dict(result)}
        self._records[index] = record
        self._write(json.dumps(record, ensure_ascii=False, default=str) + "\n")

    def _write(self, line: str) -> None:
        if self._fd is None:
            raise UsageError(f"the results file {str(self.path)!r} is closed")
        data = line.encode("utf-8")
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            os.fsync(self._fd)
        except OSError as exc:
            raise SgdeError(
                f"cannot write the results file {str(self.path)!r}: {exc.strerror or exc}",
                hint="free disk space or pick another --results path, then rerun with --resume",
            ) from None

    def close(self) -> None:
        """Close the file (every line is already on disk)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> ResultsLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def unique_ids(rows: Sequence[Mapping[str, Any]], *, source: str = "") -> dict[str, int]:
    """Row id (its ``id``, else its index) -> index; ids must be unique to key results.

    Raises:
        DataError: two rows share an id.
    """
    from sgde.evaluation.engines import with_ids

    index_of: dict[str, int] = {}
    for index, row in enumerate(with_ids(rows)):
        key = str(row["id"])
        if key in index_of:
            raise DataError(
                f"row id {key!r} is also the id of row {index_of[key] + 1}",
                path=source or None,
                line=index + 1,
                hint="give every row a unique 'id' (or none: rows are then keyed by position)",
            )
        index_of[key] = index
    return index_of


async def evaluate_to_log(
    plan: Plan,
    rows: Sequence[Mapping[str, Any]],
    engine: Engine,
    *,
    log: ResultsLog | None,
    seed: int = 0,
    keep_trace: str = "failures",
    on_item: ItemCallback | None = None,
    source: str = "",
) -> EvalResult:
    """Evaluate ``plan`` on ``rows``, appending each row's result to ``log`` as it finishes.

    Rows the log already holds as run (a resumed log) are not run again: their stored
    results join the new ones, so the summary covers every row in dataset order.
    ``extra["resumed"]`` counts them.

    Raises:
        DataError: a row lacks a plan input or a gold value, or two rows share an id.
        UsageError: the log belongs to another plan, seed, model or dataset.
    """
    from sgde.evaluation.engines import with_ids
    from sgde.evaluation.evaluate import ItemResult, check_dataset, summarise
    from sgde.plan import plan_hash

    check_dataset(plan, rows, source=source)
    index_of = unique_ids(rows, source=source)
    keyed = with_ids(rows)
    stored = log.finished(rows) if log is not None else {}
    items: dict[int, ItemResult] = {i: ItemResult.from_dict(r) for i, r in stored.items()}

    def finished(item: ItemResult) -> None:
        index = index_of[item.id]
        items[index] = item
        if log is not None:
            log.append(index, rows[index], item.to_dict(), ran=item.ran)
        if on_item is not None:
            on_item(item)

    pending = [keyed[i] for i in range(len(rows)) if i not in stored]
    for item in await engine.run_plan(
        plan, pending, seed=seed, keep_trace=keep_trace, on_item=finished
    ):
        items[index_of[item.id]] = item
    return summarise(
        [items[i] for i in range(len(rows))],
        name=plan.name,
        plan_hash=plan_hash(plan),
        extra={"engine": engine.name, "resumed": len(stored)},
    )
