"""Peer runner: protocol, metering proxy and budget, session lifecycle and failure capture."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from _peers_fakes import FakeServer, Upstream, write_worker
from pydantic import ValidationError

from sgde.errors import UsageError
from sgde.evaluation.peers import (
    BUDGET_MESSAGE,
    Endpoint,
    Meter,
    MeteringProxy,
    PeerJob,
    PeerSession,
    run_peer_job,
)
from sgde.evaluation.peers.protocol import MARKER, decode_line, encode


def _job(**settings: Any) -> PeerJob:
    return PeerJob(
        peer="dspy-gepa",
        description="Solve it.",
        input_fields=["question"],
        output_fields=["answer"],
        train=[{"question": "1+1?", "answer": "2"}],
        student=Endpoint(base_url="http://unused/v1"),
        teacher=Endpoint(base_url="http://unused/v1", temperature=1.0),
        settings=settings,
    )


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_protocol_lines_round_trip_and_noise_is_not_a_message() -> None:
    job = _job(max_metric_calls=3)
    line = encode(job)
    assert PeerJob.model_validate(json.loads(line)) == job
    assert decode_line("progress 10%") is None
    assert decode_line(MARKER + '{"op": "compiled"}') == {"op": "compiled"}
    with pytest.raises(UsageError, match="malformed"):
        decode_line(MARKER + "{not json")
    with pytest.raises(UsageError, match="without 'op'"):
        decode_line(MARKER + '{"x": 1}')
    with pytest.raises(ValidationError):
        PeerJob.model_validate({**json.loads(line), "input_fields": []})


def test_proxy_counts_tokens_per_phase_and_refuses_over_budget() -> None:
    meter = Meter(budget=40)
    with Upstream() as up, MeteringProxy("teacher", up.base_url, meter, max_tokens=64) as proxy:
        assert _post(proxy.base_url, {"messages": [], "max_completion_tokens": 500})[0] == 200
        assert _post(proxy.base_url, {"messages": [], "repeat_penalty": 1.3})[0] == 200
        status, body = _post(proxy.base_url, {"messages": []})
        assert status == 200  # 30 < 40 spent: admitted (it may overshoot)
        status, body = _post(proxy.base_url, {"messages": []})
        assert status == 400 and body["error"]["message"] == BUDGET_MESSAGE
        assert len(up.bodies) == 3  # the refused call never reached the model
        assert up.bodies[0]["repeat_penalty"] == 1.0
        assert up.bodies[1]["repeat_penalty"] == 1.3  # an explicit value is kept
        # llama.cpp ignores OpenAI's max_completion_tokens: the proxy sends a capped max_tokens.
        assert up.bodies[0]["max_tokens"] == 64 and "max_completion_tokens" not in up.bodies[0]
        assert up.bodies[1]["max_tokens"] == 64
        meter.phase = "predict"  # the budget caps optimisation only
        assert _post(proxy.base_url, {"messages": []})[0] == 200
        up.fail = 500
        assert _post(proxy.base_url, {"messages": []})[0] == 500
    data = meter.to_dict()
    assert data["usage"]["compile"]["teacher"]["calls"] == 3
    assert data["usage"]["compile"]["teacher"]["prompt_tokens"] == 30
    assert data["usage"]["predict"]["teacher"]["calls"] == 1
    assert (data["refused_calls"], data["failed_calls"]) == (1, 1)
    assert meter.spent("compile") == 45


def _session(tmp_path: Path, up: Upstream, events: list[str], **kw: Any) -> PeerSession:
    return PeerSession(
        sys.executable,
        tmp_path / "student.gguf",
        tmp_path / "teacher.gguf",
        budget=kw.pop("budget", None),
        server_factory=lambda model: FakeServer(up, model, events),
        script=write_worker(tmp_path),
        **kw,
    )


def test_session_runs_job_meters_roles_and_sends_only_inputs(tmp_path: Path) -> None:
    events: list[str] = []
    with Upstream() as up:
        session = _session(tmp_path, up, events)
        rows = [{"question": "q1", "answer": "7", "id": "a"}, {"question": "q2", "answer": "8"}]
        run = run_peer_job(session, _job(), rows)
    assert run.compiled.op == "compiled" and run.compiled.notes == ["n1"]
    assert [p.outputs["answer"] for p in run.predictions] == ["so ['question']"] * 2
    usage = run.meter["usage"]
    assert usage["compile"]["teacher"]["calls"] == 2
    assert usage["compile"]["student"]["calls"] == 3
    assert usage["predict"]["student"]["calls"] == 2
    assert "teacher" not in usage["predict"]
    assert "peer noise on stdout" in run.log_tail
    # The teacher stops once the peer has optimised; everything stops at the end.
    assert events == [
        "start student.gguf",
        "start teacher.gguf",
        "stop teacher.gguf",
        "stop teacher.gguf",
        "stop student.gguf",
    ]


def test_budget_refusals_reach_the_peer(tmp_path: Path) -> None:
    with Upstream() as up:
        session = _session(tmp_path, up, [], budget=20)
        run = run_peer_job(session, _job(teacher_calls=3, student_calls=2), [])
    assert run.meter["usage"]["compile"]["teacher"]["total_tokens"] == 30
    assert run.meter["refused_calls"] == 3  # 1 teacher + 2 student calls over the cap
    assert any("call failed" in line for line in run.log_tail)


@pytest.mark.parametrize(
    ("mode", "error", "detail"),
    [
        ("crash", "WorkerExited: the peer process exited with status 3", "blew up"),
        ("fail", "AdapterParseError: no [[ ## answer ## ]]", None),
    ],
)
def test_a_peer_that_fails_is_a_result(
    tmp_path: Path, mode: str, error: str, detail: str | None
) -> None:
    with Upstream() as up:
        session = _session(tmp_path, up, [])
        run = run_peer_job(session, _job(mode=mode), [{"question": "q"}])
    assert run.compiled.op == "failed"
    assert run.compiled.error == error
    if detail:
        assert detail in (run.compiled.traceback or "")
    assert run.predictions[0].error == f"PeerFailed: {error}"


def test_worker_dying_mid_prediction_is_recorded(tmp_path: Path) -> None:
    with Upstream() as up:
        session = _session(tmp_path, up, [])
        run = run_peer_job(session, _job(mode="die_on_predict"), [{"question": "a"}] * 2)
    assert [p.error for p in run.predictions] == [
        "PeerFailed: WorkerExited: the peer process exited with status 4"
    ] * 2


def test_a_silent_worker_times_out(tmp_path: Path) -> None:
    script = tmp_path / "silent.py"
    script.write_text("import sys, time\nsys.stdin.readline()\ntime.sleep(30)\n")
    with Upstream() as up:
        session = PeerSession(
            sys.executable,
            tmp_path / "s.gguf",
            tmp_path / "t.gguf",
            budget=None,
            server_factory=lambda model: FakeServer(up, model, []),
            script=script,
            compile_timeout_s=1.0,
        )
        with session:
            reply = session.compile(_job())
    assert reply.op == "failed" and reply.error is not None
    assert reply.error.startswith("TimeoutError")
