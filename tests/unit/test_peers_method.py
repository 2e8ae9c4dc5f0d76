"""Peers as bench methods, their venv cache, and the worker program's own logic (fakes only)."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _peers_fakes import FakeServer, Upstream, write_worker

from sgde.errors import UsageError
from sgde.evaluation.baselines import get_method
from sgde.evaluation.peers import (
    BUDGET_MESSAGE,
    PEERS,
    PeerMethod,
    PeerSession,
    PeerVenv,
    VenvSpec,
    ensure_venv,
    worker_script,
)
from sgde.evaluation.peers.venv import MARKER
from sgde.task import TaskSpec
from sgde.testing import FunctionBackend

ROWS = [
    {"id": "r1", "question": "Ann has 3 apples and buys 2. How many?", "answer": 5},
    {"id": "r2", "question": "12 eggs per box, 250 boxes?", "answer": 3000},
]


class NamedBackend(FunctionBackend):
    def __init__(self, name: str) -> None:
        super().__init__(lambda request: "unused")
        self._local_name = name

    @property
    def name(self) -> str:
        return self._local_name


def _method(tmp_path: Path, up: Upstream, peer: str = "dspy-gepa", **settings: Any) -> PeerMethod:
    (tmp_path / "s.gguf").write_bytes(b"x")
    (tmp_path / "t.gguf").write_bytes(b"x")

    def session(python: Any, student: Path, teacher: Path, *, budget: int | None) -> PeerSession:
        return PeerSession(
            sys.executable,
            student,
            teacher,
            budget=budget,
            server_factory=lambda model: FakeServer(up, model, []),
            script=write_worker(tmp_path),
        )

    venv = PeerVenv(tmp_path, Path(sys.executable), ("dspy==3.4.1", "gepa==0.1.4"), False, 0.0)
    return PeerMethod(
        peer,
        student_model=str(tmp_path / "s.gguf"),
        teacher_model=str(tmp_path / "t.gguf"),
        session_factory=session,
        venv_factory=lambda spec: venv,
        **settings,
    )


async def test_prepare_and_predict_through_the_peer(tmp_path: Path) -> None:
    with Upstream() as up:
        method = _method(tmp_path, up, max_metric_calls=7)
        student = NamedBackend("local:smollm2-135m")
        prepared = await method.prepare(
            ROWS, teacher=student, student=student, sandbox=None, budget=1000, seed=3
        )
        report = prepared.report
        assert report["status"] == "compiled"
        assert report["settings"]["max_metric_calls"] == 7
        assert report["budget"]["tokens"] == 1000
        assert report["budget"]["peer_knob"] == {"max_metric_calls": 7}
        assert report["versions"] == {"dspy": "3.4.1", "gepa": "0.1.4"}
        assert prepared.usage["teacher"].calls == 2
        assert prepared.usage["student"].calls == 3
        up.content = "unused"
        prediction = await method.predict(prepared, ROWS[0], student=student, sandbox=None)
        # The fake worker answers "so ['question']": no number in it.
        assert prediction.answer is None
        assert prediction.error == "no number in the program's answer"
        assert prediction.usage.calls == 1
        prepared.state.session.close()


async def test_failed_optimisation_scores_every_row_as_a_failure(tmp_path: Path) -> None:
    with Upstream() as up:
        method = _method(tmp_path, up)
        method.settings["mode"] = "fail"
        student = NamedBackend("local:smollm2-135m")
        prepared = await method.prepare(
            ROWS, teacher=student, student=student, sandbox=None, budget=None, seed=0
        )
        assert prepared.report["status"] == "failed"
        assert prepared.report["failure"].startswith("AdapterParseError")
        prediction = await method.predict(prepared, ROWS[1], student=student, sandbox=None)
        assert prediction.answer is None
        assert prediction.error == "PeerFailed: AdapterParseError: no [[ ## answer ## ]]"
        prepared.state.session.close()


def test_registry_builds_peers_and_rejects_unknown_settings() -> None:
    method = get_method("textgrad", steps=5)
    assert isinstance(method, PeerMethod) and method.settings["steps"] == 5
    assert get_method("dspy-mipro").name == "dspy-mipro"
    with pytest.raises(UsageError, match="invalid options"):
        get_method("dspy-gepa", num_trials=3)


async def test_peers_need_local_models() -> None:
    method = PeerMethod("dspy-mipro")
    remote = NamedBackend("openai:gpt-4o-mini")
    with pytest.raises(UsageError, match="local models"):
        await method.prepare(ROWS, teacher=remote, student=remote, sandbox=None, budget=None)


def test_typed_task_fields_become_the_signature() -> None:
    method = PeerMethod("dspy-gepa")
    task = TaskSpec(
        description="Name the city.", inputs={"text": "string"}, outputs={"city": "string"}
    )
    method.bind_task(task)
    job = method._job([{"text": "I live in Oslo", "city": "Oslo", "id": "x"}], seed=1)
    assert (job.input_fields, job.output_fields, job.numeric) == (["text"], ["city"], False)
    assert job.train == [{"text": "I live in Oslo", "city": "Oslo"}]


# -- venv cache ---------------------------------------------------------------------------


def _fake_runner(calls: list[list[str]], fail_on: str | None = None) -> Any:
    def run(cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
        calls.append(list(cmd))
        if "venv" in cmd:
            target = Path(cmd[-1])
            (target / "bin").mkdir(parents=True)
            (target / "bin" / "python").write_text("")
        if fail_on is not None and fail_on in cmd:
            return subprocess.CompletedProcess(cmd, 1, "", "ERROR: no matching distribution")
        out = "dspy==3.4.1\noptuna==5.0.0\n" if "freeze" in cmd else ""
        return subprocess.CompletedProcess(cmd, 0, out, "")

    return run


def test_venv_is_built_once_then_cached(tmp_path: Path) -> None:
    spec = VenvSpec("demo-1", ("dspy==3.4.1",), "import dspy")
    calls: list[list[str]] = []
    venv = ensure_venv(spec, root=tmp_path, run=_fake_runner(calls))
    assert venv.created and venv.path == tmp_path / "demo-1"
    assert venv.versions() == {"dspy": "3.4.1", "optuna": "5.0.0"}
    assert json.loads((venv.path / MARKER).read_text())["requirements"] == ["dspy==3.4.1"]
    n = len(calls)
    again = ensure_venv(spec, root=tmp_path, run=_fake_runner(calls))
    assert not again.created and len(calls) == n and again.freeze == venv.freeze
    # New pins: rebuilt.
    newer = VenvSpec("demo-1", ("dspy==3.5.0",), "import dspy")
    assert ensure_venv(newer, root=tmp_path, run=_fake_runner(calls)).created


def test_failed_pip_install_is_a_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    spec = VenvSpec("demo-2", ("dspy==9.9.9",), "import dspy")
    with pytest.raises(UsageError, match=r"pip install.*no matching distribution"):
        ensure_venv(spec, root=tmp_path, run=_fake_runner([], fail_on="dspy==9.9.9"))
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_every_peer_pins_exact_versions() -> None:
    for spec in PEERS.values():
        assert all("==" in r for r in spec.venv.requirements), spec.name
        assert spec.budget_knob in spec.settings


# -- the worker program (stdlib part; the peers' packages are not imported) -----------------


def _worker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("peer_worker", worker_script())
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_worker_metric_compares_numbers_absolutely() -> None:
    worker = _worker()
    assert worker.last_number("so 1,234,569 apples.") == 1234569
    assert worker.correct("The answer is 26806625", "26806625", True)
    assert not worker.correct("26806603", "26806625", True)
    assert not worker.correct("no idea", "5", True)
    assert worker.correct(" Oslo ", "oslo", False)


def test_worker_main_reports_failures_and_predictions(monkeypatch: pytest.MonkeyPatch) -> None:
    worker = _worker()

    class Peer:
        def __init__(self, job: dict[str, Any]) -> None:
            self.job = job
            self.notes = ["fake"]

        def compile(self) -> dict[str, Any]:
            return {"instructions": "x"}

        def predict(self, row: dict[str, Any]) -> dict[str, Any]:
            if row["question"] == "bad":
                raise ValueError("adapter could not parse")
            return {"answer": "4"}

    monkeypatch.setattr(worker, "PEERS", {"fake": Peer})
    lines = [
        json.dumps({"peer": "fake"}),
        json.dumps({"op": "predict", "row": {"question": "2+2"}}),
        json.dumps({"op": "predict", "row": {"question": "bad"}}),
        json.dumps({"op": "close"}),
    ]
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    monkeypatch.setattr(worker, "_STDOUT", out)
    assert worker.main() == 0
    messages = [json.loads(line[len(worker.MARKER) :]) for line in out.getvalue().splitlines()]
    assert [m["op"] for m in messages] == ["compiled", "prediction", "prediction"]
    assert messages[1]["outputs"] == {"answer": "4"}
    assert messages[2]["error"] == "ValueError: adapter could not parse"


def test_worker_knows_the_proxys_budget_refusal_behind_retries() -> None:
    worker = _worker()
    assert worker.BUDGET_MESSAGE == BUDGET_MESSAGE  # the worker runs without sgde: a copy

    class Attempt:
        def __init__(self, exc: BaseException) -> None:
            self._exc = exc

        def exception(self) -> BaseException:
            return self._exc

    class RetryError(Exception):  # tenacity's shape: the last attempt holds the error
        def __init__(self, last: BaseException) -> None:
            super().__init__("RetryError[<Future state=finished raised BadRequestError>]")
            self.last_attempt = Attempt(last)

    refused = ValueError(f"Error code: 400 - {{'error': {{'message': '{BUDGET_MESSAGE}'}}}}")
    assert worker.budget_spent(RetryError(refused))
    try:
        try:
            raise refused
        except ValueError as inner:
            raise RuntimeError("step failed") from inner
    except RuntimeError as outer:
        assert worker.budget_spent(outer)
    assert not worker.budget_spent(RetryError(ValueError("Error code: 400 - bad grammar")))
