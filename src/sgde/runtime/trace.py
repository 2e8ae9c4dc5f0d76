"""Run traces: everything that happened in one plan run, as plain JSON-ready records.

One :class:`RunTrace` per run (one dataset row), holding one :class:`NodeTrace` per executed
node in plan order; consensus nodes keep every :class:`SampleTrace` and the vote. Traces are
stored as JSON Lines, one run per line, each with ``schema_version`` (see
:func:`write_traces` / :func:`read_traces`); the optimiser reads them back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sgde.errors import BackendError, DataError, OutputParseError, SandboxError, UsageError
from sgde.planfile.files import write_text_atomic
from sgde.runtime.backend import Usage
from sgde.runtime.jsonl import iter_jsonl

__all__ = [
    "TRACE_SCHEMA_VERSION",
    "NodeStatus",
    "NodeTrace",
    "RunTrace",
    "SampleTrace",
    "error_info",
    "read_traces",
    "usage_from_dict",
    "write_traces",
]

TRACE_SCHEMA_VERSION = 1

NodeStatus = Literal["ok", "error", "skipped"]


def error_info(exc: BaseException) -> dict[str, Any]:
    """Describe an exception for a trace: ``type`` and ``message`` plus known fields.

    Args:
        exc: The exception.

    Returns:
        ``{"type", "message"}`` and, when present, ``rule``/``line`` (sandbox) or
        ``provider``/``status``/``retryable`` (backend).
    """
    info: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, SandboxError):
        info["rule"] = exc.rule
        if exc.line is not None:
            info["line"] = exc.line
    elif isinstance(exc, BackendError):
        info["provider"] = exc.provider
        info["status"] = exc.status
        info["retryable"] = exc.retryable
    elif isinstance(exc, OutputParseError):
        info["raw"] = exc.raw
    return info


def usage_from_dict(data: Any) -> Usage:
    """Inverse of :meth:`Usage.to_dict <sgde.runtime.backend.Usage.to_dict>`.

    Missing keys count as zero and anything that is not a mapping gives an empty usage, so
    traces and reports written by older versions still load.
    """
    if not isinstance(data, Mapping):
        return Usage()
    return Usage(
        prompt_tokens=int(data.get("prompt_tokens", 0)),
        completion_tokens=int(data.get("completion_tokens", 0)),
        calls=int(data.get("calls", 0)),
        usd=float(data.get("usd", 0.0)),
    )


@dataclass
class SampleTrace:
    """One sample of a consensus fan-out.

    Attributes:
        index: Sample index (0-based).
        seed: Seed sent with the request.
        temperature: Sampling temperature used.
        raw_output: The model's raw text (last attempt), if any.
        output: The parsed object, or None when the sample is an invalid vote.
        error: :func:`error_info` of the failure, if any.
        latency_s: Wall time of the sample including retries.
        usage: Tokens used by this sample (all attempts).
        attempts: Number of calls made.
        member: Name of the consensus member that asked (prompt-variant members), if any.
    """

    index: int
    seed: int | None = None
    temperature: float = 0.0
    raw_output: str | None = None
    output: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    latency_s: float = 0.0
    usage: Usage = field(default_factory=Usage)
    attempts: int = 0
    member: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``member`` only when set)."""
        return {
            **({"member": self.member} if self.member is not None else {}),
            "index": self.index,
            "seed": self.seed,
            "temperature": self.temperature,
            "raw_output": self.raw_output,
            "output": self.output,
            "error": self.error,
            "latency_s": round(self.latency_s, 6),
            "usage": self.usage.to_dict(),
            "attempts": self.attempts,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SampleTrace:
        """Inverse of :meth:`to_dict`."""
        return cls(
            index=int(data["index"]),
            seed=data.get("seed"),
            temperature=float(data.get("temperature", 0.0)),
            raw_output=data.get("raw_output"),
            output=data.get("output"),
            error=data.get("error"),
            latency_s=float(data.get("latency_s", 0.0)),
            usage=usage_from_dict(data.get("usage")),
            attempts=int(data.get("attempts", 0)),
            member=data.get("member"),
        )


@dataclass
class NodeTrace:
    """What one node did in one run.

    Attributes:
        node_id: The node's id.
        kind: ``"llm"``, ``"code"`` or ``"consensus"``.
        status: ``"ok"``, ``"error"`` or ``"skipped"`` (a dependency failed).
        inputs: The node's resolved inputs (parameter -> value).
        messages: Rendered chat messages (``{"role", "content"}``), for model nodes.
        raw_output: The model's raw text (last attempt), for llm nodes.
        output: The node's fields, when it succeeded.
        samples: Every consensus sample, in index order.
        vote: The vote (:meth:`VoteResult.to_dict`), for consensus nodes.
        latency_s: Wall time of the node, including retries and samples.
        usage: Tokens used by the node (all attempts and samples).
        error: :func:`error_info` of the failure; for skipped nodes, why.
        attempts: Calls made (for consensus: summed over samples).
        model: Backend name (``provider:model``) for model nodes.
        role: The model role the node used, for model nodes.
        wrapped: For consensus nodes, the id of the sampled node.
        started_s: Start time relative to the start of the run.
    """

    node_id: str
    kind: str
    status: NodeStatus = "ok"
    inputs: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, str]] = field(default_factory=list)
    raw_output: str | None = None
    output: dict[str, Any] | None = None
    samples: list[SampleTrace] = field(default_factory=list)
    vote: dict[str, Any] | None = None
    latency_s: float = 0.0
    usage: Usage = field(default_factory=Usage)
    error: dict[str, Any] | None = None
    attempts: int = 0
    model: str | None = None
    role: str | None = None
    wrapped: str | None = None
    started_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "node_id": self.node_id,
            "kind": self.kind,
            "status": self.status,
            "inputs": self.inputs,
            "messages": self.messages,
            "raw_output": self.raw_output,
            "output": self.output,
            "samples": [s.to_dict() for s in self.samples],
            "vote": self.vote,
            "latency_s": round(self.latency_s, 6),
            "usage": self.usage.to_dict(),
            "error": self.error,
            "attempts": self.attempts,
            "model": self.model,
            "role": self.role,
            "wrapped": self.wrapped,
            "started_s": round(self.started_s, 6),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeTrace:
        """Inverse of :meth:`to_dict`."""
        status = data.get("status", "ok")
        if status not in ("ok", "error", "skipped"):
            raise ValueError(f"unknown node status {status!r}")
        return cls(
            node_id=str(data["node_id"]),
            kind=str(data["kind"]),
            status=status,
            inputs=dict(data.get("inputs") or {}),
            messages=[dict(m) for m in data.get("messages") or []],
            raw_output=data.get("raw_output"),
            output=data.get("output"),
            samples=[SampleTrace.from_dict(s) for s in data.get("samples") or []],
            vote=data.get("vote"),
            latency_s=float(data.get("latency_s", 0.0)),
            usage=usage_from_dict(data.get("usage")),
            error=data.get("error"),
            attempts=int(data.get("attempts", 0)),
            model=data.get("model"),
            role=data.get("role"),
            wrapped=data.get("wrapped"),
            started_s=float(data.get("started_s", 0.0)),
        )


@dataclass
class RunTrace:
    """Everything about one plan run.

    Attributes:
        run_id: Unique id of the run.
        plan_name: The plan's ``name``.
        plan_hash: Content hash of the plan (``sha256:<hex>``), when known.
        seed: The run seed.
        inputs: The (coerced) plan inputs.
        outputs: The plan outputs that resolved.
        ok: Whether every node and output succeeded.
        error: The first failure, as text, when not ok.
        nodes: One trace per executed node, in plan order.
        usage: Total tokens over all nodes.
        usage_by_role: Tokens per model role.
        latency_s: Wall time of the run.
        started_at: ISO-8601 UTC start time.
    """

    run_id: str
    plan_name: str
    plan_hash: str | None = None
    seed: int = 0
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    ok: bool = True
    error: str | None = None
    nodes: list[NodeTrace] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    usage_by_role: dict[str, Usage] = field(default_factory=dict)
    latency_s: float = 0.0
    started_at: str = ""

    def node(self, node_id: str) -> NodeTrace | None:
        """The trace of node ``node_id``, or None when it was not executed."""
        for n in self.nodes:
            if n.node_id == node_id:
                return n
        return None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (includes ``schema_version``)."""
        return {
            "schema_version": TRACE_SCHEMA_VERSION,
            "run_id": self.run_id,
            "plan_name": self.plan_name,
            "plan_hash": self.plan_hash,
            "seed": self.seed,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "ok": self.ok,
            "error": self.error,
            "nodes": [n.to_dict() for n in self.nodes],
            "usage": self.usage.to_dict(),
            "usage_by_role": {k: v.to_dict() for k, v in self.usage_by_role.items()},
            "latency_s": round(self.latency_s, 6),
            "started_at": self.started_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunTrace:
        """Inverse of :meth:`to_dict`.

        Raises:
            ValueError: on an unsupported ``schema_version``.
            KeyError: when a required key is missing.
        """
        version = data.get("schema_version", TRACE_SCHEMA_VERSION)
        if version != TRACE_SCHEMA_VERSION:
            raise ValueError(
                f"trace schema_version {version!r} is not supported "
                f"(this sgde reads version {TRACE_SCHEMA_VERSION})"
            )
        return cls(
            run_id=str(data["run_id"]),
            plan_name=str(data["plan_name"]),
            plan_hash=data.get("plan_hash"),
            seed=int(data.get("seed", 0)),
            inputs=dict(data.get("inputs") or {}),
            outputs=dict(data.get("outputs") or {}),
            ok=bool(data.get("ok", False)),
            error=data.get("error"),
            nodes=[NodeTrace.from_dict(n) for n in data.get("nodes") or []],
            usage=usage_from_dict(data.get("usage")),
            usage_by_role={
                str(k): usage_from_dict(v) for k, v in dict(data.get("usage_by_role") or {}).items()
            },
            latency_s=float(data.get("latency_s", 0.0)),
            started_at=str(data.get("started_at", "")),
        )

    def to_json(self) -> str:
        """One JSON line (no trailing newline)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, default=str)


def write_traces(path: str | Path, traces: Iterable[RunTrace], *, append: bool = False) -> None:
    """Write traces as JSON Lines.

    Args:
        path: Target file. Without ``append`` it is replaced atomically.
        traces: The runs to write, one per line.
        append: Append to an existing file instead of replacing it.

    Raises:
        UsageError: when the file cannot be written.
    """
    target = Path(path)
    lines = "".join(t.to_json() + "\n" for t in traces)
    if not append:
        write_text_atomic(target, lines, what="trace file")
        return
    try:
        with target.open("a", encoding="utf-8") as fh:
            fh.write(lines)
    except OSError as exc:
        raise UsageError(
            f"cannot append to trace file {target}: {exc.strerror or exc}",
            hint="check that the directory exists and is writable",
        ) from None


def read_traces(path: str | Path) -> list[RunTrace]:
    """Read traces written by :func:`write_traces` (blank lines are skipped).

    Raises:
        DataError: naming the file and line when a line is not a valid trace, or when the
            file cannot be read.
    """
    traces: list[RunTrace] = []
    for number, data in iter_jsonl(path, what="trace file"):
        try:
            traces.append(RunTrace.from_dict(data))
        except (ValueError, KeyError, TypeError) as exc:
            detail = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            raise DataError(
                f"not a valid run trace: {detail}",
                path=str(path),
                line=number,
                hint="trace files are written by `sgde run --trace FILE`",
            ) from exc
    return traces
