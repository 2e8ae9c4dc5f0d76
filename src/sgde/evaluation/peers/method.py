"""The peers as bench methods: ``dspy-gepa``, ``dspy-mipro``, ``textgrad``.

:class:`PeerMethod` implements the bench's method protocol around a
:class:`~sgde.evaluation.peers.session.PeerSession`: ``prepare`` builds (or reuses) the peer's
venv, starts the student and teacher ``llama_cpp.server`` processes for the same GGUF files
the bench's ``local:`` models use, and lets the peer optimise with the bench's token budget
enforced by the metering proxy; ``predict`` sends one test row's inputs to the optimised
program. The session (servers, worker) lives as long as the prepared state and is closed
when it is collected, or at exit.

A peer that fails to optimise is not an error of the cell: every prediction then carries the
failure (``PeerFailed: ...``), the cell scores 0, and the report shows the failure mode.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sgde.errors import UsageError
from sgde.evaluation.baselines.base import Prediction, Prepared, Row, outputs_prediction
from sgde.evaluation.baselines.final_number import extract_final_number
from sgde.evaluation.peers.protocol import Endpoint, PeerJob
from sgde.evaluation.peers.session import PeerSession
from sgde.evaluation.peers.specs import PeerSpec, get_peer
from sgde.evaluation.peers.venv import PeerVenv, ensure_venv
from sgde.models.local import model_path
from sgde.plan.model import Plan
from sgde.runtime.backend import Backend
from sgde.runtime.calls import CodeRunner
from sgde.task import TaskSpec

__all__ = ["GSM_DESCRIPTION", "PEERS_MISSING", "PeerMethod", "peer_factory"]

PEERS_MISSING = "unavailable (pip install -e '.[peers]' for llama-cpp-python's server)"
GSM_DESCRIPTION = (
    "Solve the math word problem. Give the final answer as a single number in `answer`."
)

SessionFactory = Callable[..., PeerSession]
VenvFactory = Callable[[PeerSpec], PeerVenv]


def _server_available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("llama_cpp", "uvicorn"))


@dataclass
class _PeerState:
    session: PeerSession
    task: TaskSpec | None


def _local_model(backend: Backend | None, override: str | None, role: str) -> Path:
    if override:
        return Path(override) if Path(override).suffix == ".gguf" else model_path(override)
    name = getattr(backend, "name", "") or ""
    if not name.startswith("local:"):
        raise UsageError(
            f"peers talk to local models through llama.cpp's server; the {role} is {name!r}",
            hint=f"use a local:… {role} in the bench config, or set the peer's "
            f"'{role}_model' option to a local model name or a .gguf file",
        )
    return model_path(name)


class PeerMethod:
    """A peer optimiser run from its own package, as a bench method.

    Args:
        peer: Peer name (``dspy-gepa``, ``dspy-mipro``, ``textgrad``).
        student_model / teacher_model: Local model name or ``.gguf`` path overriding the
            bench's (default: the bench's ``local:`` student and teacher).
        session_factory: Builds the session (tests inject fakes).
        venv_factory: Builds or finds the venv (default :func:`ensure_venv`).
        **settings: Peer settings overriding the defaults of
            :data:`~sgde.evaluation.peers.specs.PEERS` (e.g. ``max_metric_calls=60``).
    """

    uses_teacher = True
    uses_trainset = True

    def __init__(
        self,
        peer: str,
        *,
        student_model: str | None = None,
        teacher_model: str | None = None,
        session_factory: SessionFactory = PeerSession,
        venv_factory: VenvFactory | None = None,
        **settings: Any,
    ) -> None:
        self.spec = get_peer(peer)
        unknown = sorted(set(settings) - set(self.spec.settings))
        if unknown:
            raise TypeError(
                f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(self.spec.settings)}"
            )
        self.settings = {**self.spec.settings, **settings}
        self.student_model = student_model
        self.teacher_model = teacher_model
        self.session_factory = session_factory
        self.venv_factory = venv_factory or (lambda spec: ensure_venv(spec.venv))
        self.task: TaskSpec | None = None

    @property
    def name(self) -> str:
        """Registry name."""
        return self.spec.name

    def bind_task(self, task: TaskSpec, plan: Plan | None = None) -> None:
        """Answer a typed task (its inputs and outputs become the peer's signature)."""
        self.task = task

    def unavailable_reason(self) -> str | None:
        """Why the peer cannot run here (no llama.cpp server in sgde's env), or None."""
        return None if _server_available() else PEERS_MISSING

    def _job(self, rows: Sequence[Row], seed: int) -> PeerJob:
        task = self.task
        inputs = list(task.inputs) if task is not None else ["question"]
        outputs = list(task.outputs) if task is not None else ["answer"]
        numeric = task is None or (
            len(task.outputs) == 1
            and next(iter(task.outputs.values())).kind in ("integer", "number")
        )
        fields = [*inputs, *outputs]
        train = [{k: _text(row.get(k)) for k in fields} for row in rows]
        student_tokens = int(self.settings["student_max_tokens"])
        teacher_tokens = int(self.settings["teacher_max_tokens"])
        return PeerJob(
            peer=self.name,
            description=task.description if task is not None else GSM_DESCRIPTION,
            input_fields=inputs,
            output_fields=outputs,
            numeric=numeric,
            train=train,
            student=Endpoint(base_url="", max_tokens=student_tokens),
            teacher=Endpoint(base_url="", max_tokens=teacher_tokens, temperature=1.0),
            settings=dict(self.settings),
            seed=seed,
        )

    async def prepare(
        self,
        trainset: Sequence[Row],
        *,
        teacher: Backend | None,
        student: Backend,
        sandbox: CodeRunner | None,
        budget: int | None,
        seed: int = 0,
    ) -> Prepared:
        """Build the venv (once), start the servers, let the peer optimise within ``budget``."""
        reason = self.unavailable_reason()
        if reason is not None:
            raise UsageError(f"method {self.name!r} is {reason}", hint='pip install -e ".[peers]"')
        student_file = _local_model(student, self.student_model, "student")
        teacher_file = _local_model(teacher, self.teacher_model, "teacher")
        job = self._job(trainset, seed)
        return await asyncio.to_thread(self._compile, job, student_file, teacher_file, budget)

    def _compile(
        self, job: PeerJob, student_file: Path, teacher_file: Path, budget: int | None
    ) -> Prepared:
        start = time.perf_counter()
        venv = self.venv_factory(self.spec)
        session = self.session_factory(venv.python, student_file, teacher_file, budget=budget)
        compiled = session.compile(job)
        state = _PeerState(session=session, task=self.task)
        weakref.finalize(state, session.close)
        atexit.register(session.close)
        meter = session.meter.to_dict()
        compile_usage = session.meter.usage.get("compile", {})
        versions = venv.versions()
        report: dict[str, Any] = {
            "peer": self.name,
            "optimizer": self.spec.optimizer,
            "status": compiled.op,
            "failure": compiled.error,
            "traceback": (compiled.traceback or "")[-1500:] or None,
            "notes": compiled.notes,
            "program": compiled.program,
            "settings": dict(self.settings),
            "budget": {
                "tokens": budget,
                "spent": session.meter.spent("compile"),
                "refused_calls": meter["refused_calls"],
                "peer_knob": {self.spec.budget_knob: self.settings.get(self.spec.budget_knob)},
            },
            "meter": meter,
            "versions": {
                k: versions[k]
                for k in ("dspy", "textgrad", "optuna", "gepa", "litellm", "openai")
                if k in versions
            },
            "venv": {"path": str(venv.path), "requirements": list(self.spec.venv.requirements)},
            "models": {"student": str(student_file), "teacher": str(teacher_file)},
            "peer_seconds": round(compiled.seconds, 3),
            "log_tail": list(session.log)[-20:],
        }
        return Prepared(
            method=self.name,
            plan=None,
            usage=dict(compile_usage),
            latency_s=time.perf_counter() - start,
            report=report,
            state=state,
            task=self.task,
        )

    async def predict(
        self,
        prepared: Prepared,
        row: Row,
        *,
        student: Backend,
        sandbox: CodeRunner | None,
        seed: int = 0,
    ) -> Prediction:
        """The optimised program's answer (failures recorded in ``error``, never raised)."""
        state = prepared.state
        if not isinstance(state, _PeerState):
            raise UsageError(f"prepared state of {self.name!r} holds no peer session")
        return await asyncio.to_thread(self._predict, state, row)

    def _predict(self, state: _PeerState, row: Row) -> Prediction:
        start = time.perf_counter()
        reply, usage = state.session.predict(row)
        trace = {"outputs": reply.outputs, "peer_error": reply.error}
        if state.task is not None:
            outputs = {name: reply.outputs.get(name) for name in state.task.outputs}
            answer, error = outputs_prediction(state.task, outputs, error=reply.error)
            return Prediction(
                answer=answer if reply.error is None else None,
                raw=str(reply.outputs),
                usage=usage,
                latency_s=time.perf_counter() - start,
                trace=trace,
                error=error,
                outputs=outputs if reply.error is None else None,
            )
        raw = str(reply.outputs.get("answer") or "")
        number = extract_final_number(raw) if reply.error is None else None
        error = reply.error
        if number is None and error is None:
            error = "no number in the program's answer"
        return Prediction(
            answer=number,
            raw=raw,
            usage=usage,
            latency_s=time.perf_counter() - start,
            trace=trace,
            error=error,
        )


def _text(value: Any) -> Any:
    return value if isinstance(value, str) or value is None else str(value)


def peer_factory(peer: str) -> Callable[..., PeerMethod]:
    """A registry factory for ``peer`` (keyword options are the peer's settings)."""

    def factory(**options: Any) -> PeerMethod:
        return PeerMethod(peer, **options)

    factory.__name__ = f"PeerMethod[{peer}]"
    factory.__doc__ = f"The real {get_peer(peer).optimizer} as the bench method {peer!r}."
    return factory
