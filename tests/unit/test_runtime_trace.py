"""Trace records: dict round-trip and JSONL files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sgde.errors import BackendError, DataError, OutputParseError, SandboxError
from sgde.runtime.backend import Usage
from sgde.runtime.trace import (
    NodeTrace,
    RunTrace,
    SampleTrace,
    error_info,
    read_traces,
    write_traces,
)


def _trace(run_id: str = "r1") -> RunTrace:
    sample = SampleTrace(
        index=1,
        seed=7,
        temperature=0.7,
        raw_output='{"eggs": 3}',
        output={"eggs": 3},
        latency_s=0.25,
        usage=Usage(10, 3, 1, 0.0),
        attempts=1,
    )
    node = NodeTrace(
        node_id="vote",
        kind="consensus",
        inputs={"question": "How many?"},
        messages=[{"role": "user", "content": "How many?"}],
        output={"eggs": 3},
        samples=[sample],
        vote={"value": {"eggs": 3}, "tally": {"eggs": [["3", 1]]}, "valid": 1, "n": 1},
        latency_s=0.5,
        usage=Usage(10, 3, 1, 0.001),
        attempts=1,
        model="scripted:test",
        role="student",
        wrapped="extract",
        started_s=0.01,
    )
    skipped = NodeTrace(
        node_id="compute",
        kind="code",
        status="skipped",
        error={"type": "Skipped", "message": "not run"},
    )
    return RunTrace(
        run_id=run_id,
        plan_name="duck-eggs",
        plan_hash="sha256:abc",
        seed=3,
        inputs={"question": "How many?"},
        outputs={},
        ok=False,
        error="node 'compute' skipped",
        nodes=[node, skipped],
        usage=Usage(10, 3, 1, 0.001),
        usage_by_role={"student": Usage(10, 3, 1, 0.001)},
        latency_s=0.6,
        started_at="2026-11-22T00:00:00.000+00:00",
    )


def test_dict_roundtrip_is_lossless() -> None:
    trace = _trace()
    data = trace.to_dict()
    assert data["schema_version"] == 1
    json.dumps(data)  # JSON-ready
    back = RunTrace.from_dict(data)
    assert back.to_dict() == data
    assert back.node("vote") is not None
    assert back.node("vote").samples[0].output == {"eggs": 3}  # type: ignore[union-attr]
    assert back.node("missing") is None


def test_jsonl_write_read_and_append(tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    write_traces(path, [_trace("a"), _trace("b")])
    write_traces(path, [_trace("c")], append=True)
    traces = read_traces(path)
    assert [t.run_id for t in traces] == ["a", "b", "c"]
    write_traces(path, [_trace("d")])  # replaces
    assert [t.run_id for t in read_traces(path)] == ["d"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_read_traces_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(_trace().to_json() + "\n\n{not json}\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_traces(path)
    assert f"{path}:3" in str(info.value)


def test_read_traces_rejects_other_schema_versions(tmp_path: Path) -> None:
    data = _trace().to_dict()
    data["schema_version"] = 99
    path = tmp_path / "v99.jsonl"
    path.write_text(json.dumps(data) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match="schema_version"):
        read_traces(path)


def test_read_traces_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read"):
        read_traces(tmp_path / "nope.jsonl")


def test_error_info_keeps_structured_fields() -> None:
    info = error_info(SandboxError("bad import", rule="policy:import-not-allowed", line=2))
    assert info["type"] == "SandboxError"
    assert info["rule"] == "policy:import-not-allowed"
    assert info["line"] == 2
    info = error_info(BackendError("boom", provider="openai", status=503, retryable=True))
    assert (info["status"], info["retryable"]) == (503, True)
    info = error_info(OutputParseError("no json", raw="hello"))
    assert info["raw"] == "hello"
    assert error_info(ValueError("x")) == {"type": "ValueError", "message": "x"}
