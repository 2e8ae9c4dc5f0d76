"""One peer run: model servers, metering proxies and the peer worker, started and stopped.

:class:`PeerSession` starts the student and teacher servers (one thread each), a
:class:`~sgde.evaluation.peers.proxy.MeteringProxy` in front of each, and the worker script
with the peer venv's interpreter; :meth:`~PeerSession.compile` sends the job, and stops the
teacher server once the peer has optimised; :meth:`~PeerSession.predict` answers one test
row; :meth:`~PeerSession.close` stops everything. :func:`run_peer_job` does all of it for a
list of test rows. A peer that crashes or cannot follow its own format is a *result*
(``CompileReply(op="failed")``, a prediction with ``error``), never an exception.
"""

from __future__ import annotations

import collections
import os
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import IO, Any, Protocol

from sgde.evaluation.peers.protocol import (
    CompileReply,
    Endpoint,
    PeerJob,
    PredictReply,
    decode_line,
    encode,
)
from sgde.evaluation.peers.proxy import Meter, MeteringProxy
from sgde.evaluation.peers.servers import LlamaServer, die_with_parent
from sgde.runtime.backend import Usage

__all__ = ["PeerRun", "PeerSession", "ServerLike", "run_peer_job", "worker_script"]

_LOG_LINES = 200


class ServerLike(Protocol):
    """What a session needs of a model server (tests pass fakes)."""

    def start(self) -> str:
        """Start; return the ``/v1`` base URL."""
        ...

    def stop(self) -> None:
        """Stop (idempotent)."""
        ...


ServerFactory = Callable[[Path], ServerLike]


def _llama(model: Path) -> ServerLike:
    return LlamaServer(model, n_threads=1)


def worker_script() -> Path:
    """Path of the worker program (a data file of this package)."""
    return Path(str(resources.files("sgde.evaluation.peers") / "scripts" / "peer_worker.py"))


@dataclass
class PeerRun:
    """Everything one peer run produced (JSON-ready via :meth:`to_dict`)."""

    compiled: CompileReply
    predictions: list[PredictReply]
    meter: dict[str, Any]
    log_tail: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "compiled": self.compiled.model_dump(mode="json"),
            "predictions": [p.model_dump(mode="json") for p in self.predictions],
            "meter": self.meter,
            "log_tail": self.log_tail,
        }


class PeerSession:
    """A running peer.

    Args:
        python: The peer venv's interpreter.
        student_model / teacher_model: GGUF files (or anything ``server_factory`` takes).
        budget: Token cap of the optimisation (all roles), or None.
        server_factory: Model file -> server (default: ``llama_cpp.server``, one thread).
        script: Worker program (default :func:`worker_script`).
        compile_timeout_s / predict_timeout_s: Limits of the worker's answers.
    """

    def __init__(
        self,
        python: Path | str,
        student_model: Path,
        teacher_model: Path,
        *,
        budget: int | None,
        server_factory: ServerFactory = _llama,
        script: Path | None = None,
        compile_timeout_s: float = 4 * 3600.0,
        predict_timeout_s: float = 900.0,
    ) -> None:
        self.python = str(python)
        self.student_model = student_model
        self.teacher_model = teacher_model
        self.meter = Meter(budget=budget)
        self.server_factory = server_factory
        self.script = script or worker_script()
        self.compile_timeout_s = compile_timeout_s
        self.predict_timeout_s = predict_timeout_s
        self.log: collections.deque[str] = collections.deque(maxlen=_LOG_LINES)
        self.compiled: CompileReply | None = None
        self.job: PeerJob | None = None
        self._student: ServerLike | None = None
        self._teacher: ServerLike | None = None
        self._proxies: list[MeteringProxy] = []
        self._proc: subprocess.Popen[str] | None = None
        self._stderr: IO[str] | None = None
        self._cache: tempfile.TemporaryDirectory[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------------

    def _proxy(self, role: str, upstream: str, max_tokens: int) -> str:
        proxy = MeteringProxy(role, upstream, self.meter, max_tokens=max_tokens).__enter__()
        self._proxies.append(proxy)
        return proxy.base_url

    def _start_worker(self) -> None:
        self._stderr = tempfile.TemporaryFile(mode="w+", encoding="utf-8")  # noqa: SIM115
        # A fresh cache per run: the peers' response caches (DSPy's, TextGrad's diskcache
        # under the user cache dir) would otherwise answer repeated calls without a model.
        self._cache = tempfile.TemporaryDirectory(prefix="sgde-peer-cache-")
        env = {
            **os.environ,
            "OMP_WAIT_POLICY": "PASSIVE",
            "PYTHONUNBUFFERED": "1",
            # LiteLLM otherwise fetches a model price map on import (offline: retries).
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "DSPY_CACHEDIR": self._cache.name + "/dspy",
            "XDG_CACHE_HOME": self._cache.name,
            "TOKENIZERS_PARALLELISM": "false",
        }
        env.pop("PYTHONPATH", None)
        self._proc = subprocess.Popen(
            [self.python, "-u", str(self.script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            encoding="utf-8",
            env=env,
            # TextGrad creates a logs/ folder in the working directory on import: keep it in
            # the run's own temporary directory, not the user's.
            cwd=self._cache.name,
            bufsize=1,
            preexec_fn=die_with_parent,
        )
        threading.Thread(target=self._read, name="peer-worker-stdout", daemon=True).start()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        try:
            self._stderr.seek(0)
            return self._stderr.read()[-3000:]
        except (OSError, ValueError):
            return ""

    def _send(self, message: Mapping[str, Any] | PeerJob) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(
                encode(message if isinstance(message, PeerJob) else dict(message))
            )
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the worker is gone: _receive reports how it ended

    def _receive(self, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return {
                    "op": "failed",
                    "error": f"TimeoutError: the peer did not answer within {timeout_s:.0f} s",
                }
            try:
                line = self._lines.get(timeout=min(left, 5.0))
            except queue.Empty:
                continue
            if line is None:
                code = self._proc.wait() if self._proc is not None else None
                return {
                    "op": "failed",
                    "error": f"WorkerExited: the peer process exited with status {code}",
                    "traceback": self._stderr_tail(),
                }
            message = decode_line(line)
            if message is None:
                self.log.append(line)
            else:
                return message

    def compile(self, job: PeerJob) -> CompileReply:
        """Start the servers and the worker, optimise, stop the teacher server.

        ``job``'s endpoints are replaced by the proxies' URLs. A failed optimisation is
        returned (``op == "failed"``), not raised.

        Raises:
            BackendError / UsageError: a model server could not start.
        """
        self._student = self.server_factory(self.student_model)
        self._teacher = self.server_factory(self.teacher_model)
        try:
            student_url = self._proxy("student", self._student.start(), job.student.max_tokens)
            teacher_url = self._proxy("teacher", self._teacher.start(), job.teacher.max_tokens)
        except BaseException:
            self.close()
            raise
        job = job.model_copy(
            update={
                "student": Endpoint(**{**job.student.model_dump(), "base_url": student_url}),
                "teacher": Endpoint(**{**job.teacher.model_dump(), "base_url": teacher_url}),
            }
        )
        self.job = job
        self._start_worker()
        self._send(job)
        reply = self._receive(self.compile_timeout_s)
        if reply.get("op") not in ("compiled", "failed"):
            reply = {"op": "failed", "error": f"ProtocolError: unexpected reply {reply!r:.300}"}
        self.compiled = CompileReply.model_validate(reply)
        self._teacher.stop()
        self.meter.phase = "predict"
        return self.compiled

    def predict(self, row: Mapping[str, Any]) -> tuple[PredictReply, Usage]:
        """The program's answer to one row and the student tokens it spent.

        A failed optimisation, a dead worker or a timeout gives a reply with ``error``.
        """
        with self._lock:
            if self.compiled is None or self._closed:
                return PredictReply(error="PeerNotRunning: the peer session is closed"), Usage()
            if self.compiled.op == "failed":
                return PredictReply(error=f"PeerFailed: {self.compiled.error}"), Usage()
            before = self.meter.usage.get("predict", {}).get("student", Usage())
            start = time.perf_counter()
            fields = self.job.input_fields if self.job is not None else list(row)
            # Only the inputs: the gold answer never reaches the peer at test time.
            self._send({"op": "predict", "row": {k: row.get(k) for k in fields}})
            reply = self._receive(self.predict_timeout_s)
            after = self.meter.usage.get("predict", {}).get("student", Usage())
            used = Usage(
                prompt_tokens=after.prompt_tokens - before.prompt_tokens,
                completion_tokens=after.completion_tokens - before.completion_tokens,
                calls=after.calls - before.calls,
            )
            if reply.get("op") == "failed":
                self.compiled = CompileReply(
                    op="failed", error=reply.get("error"), traceback=reply.get("traceback")
                )
                return PredictReply(error=f"PeerFailed: {reply.get('error')}"), used
            if reply.get("op") != "prediction":
                return PredictReply(error=f"ProtocolError: unexpected reply {reply!r:.300}"), used
            out = PredictReply.model_validate(reply)
            if not out.seconds:
                out.seconds = time.perf_counter() - start
            return out, used

    def close(self) -> None:
        """Stop the worker, the proxies and the servers (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        proc = self._proc
        if proc is not None and proc.poll() is None:
            self._send({"op": "close"})
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for server in (self._teacher, self._student):
            if server is not None:
                server.stop()
        for proxy in self._proxies:
            proxy.close()
        if self._stderr is not None:
            self._stderr.close()
        if self._cache is not None:
            self._cache.cleanup()

    def __enter__(self) -> PeerSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_peer_job(session: PeerSession, job: PeerJob, test: Sequence[Mapping[str, Any]]) -> PeerRun:
    """Optimise, answer every test row, stop; the predictions in ``test`` order.

    Raises:
        BackendError / UsageError: a model server could not start.
    """
    with session:
        compiled = session.compile(job)
        predictions = [session.predict(row)[0] for row in test]
    return PeerRun(
        compiled=compiled,
        predictions=predictions,
        meter=session.meter.to_dict(),
        log_tail=list(session.log)[-40:],
    )
