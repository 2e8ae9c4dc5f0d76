"""The real DSPy optimiser (MIPROv2), run side by side as a peer we did not write.

DSPy is optional (``pip install 'sgde[dspy]'``; it pins ``openai<3``, so a separate
environment may be needed). Without it, :meth:`DspyMiproMethod.unavailable_reason` says
``"unavailable (pip install dspy)"`` and ``prepare`` raises :class:`~sgde.errors.UsageError`
with the same text, so a benchmark lists the method as unavailable instead of skipping it.

DSPy talks to the models itself, through OpenAI-compatible endpoints (e.g. a local
``python -m llama_cpp.server``): ``student_base_url`` / ``teacher_base_url``. The sgde
``Backend`` objects handed to ``prepare``/``predict`` are therefore not used for calls.
The program is ``dspy.ChainOfThought("question -> answer")``; its ``answer`` text goes
through the same final-number extraction as every CoT baseline. MIPROv2 gets the student
as ``task_model``, the teacher as ``prompt_model``, DSPy's own train/validation split of the
training rows, and small fixed search settings (DSPy has no token budget: the tokens it
spent are reported from the LMs' histories, not capped).
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sgde.errors import CompileError, UsageError
from sgde.evaluation.baselines.base import Prediction, Prepared, Row
from sgde.evaluation.baselines.final_number import extract_final_number
from sgde.runtime.backend import Backend, Usage
from sgde.runtime.calls import CodeRunner
from sgde.runtime.numbers import numbers_match

__all__ = ["DSPY_MISSING", "DspyEndpoint", "DspyMiproMethod", "dspy_available"]

DSPY_MISSING = "unavailable (pip install dspy)"
_LOCAL_KEY = "sk-local"


def dspy_available() -> bool:
    """Whether ``import dspy`` (and MIPROv2's ``optuna``) can work here."""
    return (
        importlib.util.find_spec("dspy") is not None
        and importlib.util.find_spec("optuna") is not None
    )


@dataclass(frozen=True)
class DspyEndpoint:
    """An OpenAI-compatible endpoint DSPy calls.

    Attributes:
        base_url: e.g. ``http://127.0.0.1:8081/v1``.
        model: Model name sent in requests (llama.cpp's server serves one model whatever
            the name).
        api_key: API key (local servers accept any value).
        max_tokens: Completion limit per call.
    """

    base_url: str
    model: str = "local"
    api_key: str = _LOCAL_KEY
    max_tokens: int = 512

    def lm(self, dspy: Any, *, temperature: float = 0.0) -> Any:
        """A ``dspy.LM`` for this endpoint (DSPy's response cache off)."""
        return dspy.LM(
            f"openai/{self.model}",
            api_base=self.base_url,
            api_key=self.api_key,
            temperature=temperature,
            max_tokens=self.max_tokens,
            cache=False,
            num_retries=1,
            # llama.cpp's server defaults to repeat_penalty 1.1, which corrupts copied numbers.
            extra_body={"repeat_penalty": 1.0},
        )


def _history_usage(lm: Any, start: int) -> Usage:
    total = Usage()
    for entry in list(lm.history)[start:]:
        usage = entry.get("usage") or {}
        total = total + Usage(
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            calls=1,
        )
    return total


@dataclass
class _DspyState:
    program: Any
    student_lm: Any
    lock: threading.Lock


class DspyMiproMethod:
    """DSPy's MIPROv2 on ``ChainOfThought("question -> answer")``.

    Args:
        student: Endpoint serving the student model.
        teacher: Endpoint serving the teacher model (MIPROv2's ``prompt_model``).
        num_candidates: Instruction/demo candidates (MIPROv2 ``num_candidates``).
        num_trials: Bayesian-optimisation trials.
        max_bootstrapped_demos: Bootstrapped demos per prompt.
        max_labeled_demos: Labelled demos per prompt.
        program_aware_proposer: Let MIPROv2 describe the program's source to the teacher
            (off by default: extra teacher calls that small teachers rarely answer in
            DSPy's format).
    """

    name = "dspy-mipro"
    uses_teacher = True

    def __init__(
        self,
        student: DspyEndpoint | None = None,
        teacher: DspyEndpoint | None = None,
        *,
        num_candidates: int = 3,
        num_trials: int = 6,
        max_bootstrapped_demos: int = 2,
        max_labeled_demos: int = 2,
        program_aware_proposer: bool = False,
    ) -> None:
        self.student = student
        self.teacher = teacher
        self.num_candidates = num_candidates
        self.num_trials = num_trials
        self.max_bootstrapped_demos = max_bootstrapped_demos
        self.max_labeled_demos = max_labeled_demos
        self.program_aware_proposer = program_aware_proposer

    def unavailable_reason(self) -> str | None:
        """``"unavailable (pip install dspy)"`` without DSPy; a note without endpoints."""
        if not dspy_available():
            return DSPY_MISSING
        if self.student is None or self.teacher is None:
            return (
                "unavailable (needs OpenAI-compatible endpoints for the student and teacher; "
                "the bench starts local llama.cpp servers)"
            )
        return None

    def _require(self) -> tuple[Any, DspyEndpoint, DspyEndpoint]:
        reason = self.unavailable_reason()
        if reason is not None or self.student is None or self.teacher is None:
            raise UsageError(
                f"method {self.name!r} is {reason}",
                hint="pip install 'dspy[optuna]' (or 'sgde[dspy]') and pass student/teacher "
                "endpoints",
            )
        # LiteLLM otherwise tries to download a model price map on import (offline: retries).
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import dspy

        return dspy, self.student, self.teacher

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
        """Compile with MIPROv2 (in a worker thread; DSPy is synchronous)."""
        dspy, student_ep, teacher_ep = self._require()
        rows = list(trainset)
        return await asyncio.to_thread(self._compile, dspy, student_ep, teacher_ep, rows, seed)

    def _compile(
        self,
        dspy: Any,
        student_ep: DspyEndpoint,
        teacher_ep: DspyEndpoint,
        rows: list[Row],
        seed: int,
    ) -> Prepared:
        start = time.perf_counter()
        student_lm = student_ep.lm(dspy)
        teacher_lm = teacher_ep.lm(dspy, temperature=0.7)
        examples = [
            dspy.Example(question=r["question"], answer=str(r["answer"])).with_inputs("question")
            for r in rows
        ]

        def metric(example: Any, prediction: Any, trace: Any = None) -> bool:
            value = extract_final_number(str(getattr(prediction, "answer", "") or ""))
            return value is not None and numbers_match(value, example.answer)

        optimizer = dspy.MIPROv2(
            metric=metric,
            prompt_model=teacher_lm,
            task_model=student_lm,
            auto=None,
            num_candidates=self.num_candidates,
            num_threads=1,
            max_errors=10_000,
            seed=seed,
            verbose=False,
        )
        program = dspy.ChainOfThought("question -> answer")
        try:
            with dspy.context(lm=student_lm):
                compiled = optimizer.compile(
                    program,
                    trainset=examples,
                    num_trials=self.num_trials,
                    max_bootstrapped_demos=self.max_bootstrapped_demos,
                    max_labeled_demos=self.max_labeled_demos,
                    minibatch=False,
                    program_aware_proposer=self.program_aware_proposer,
                )
        except Exception as exc:  # DSPy raises its own types (adapter parse errors, ...)
            raise CompileError(
                f"DSPy MIPROv2 failed: {type(exc).__name__}: {str(exc)[:500]}",
                hint="DSPy's prompt model (the teacher) must follow DSPy's output format; "
                "small local teachers often do not — try a stronger teacher",
            ) from exc
        compiled.set_lm(student_lm)
        predictors = [
            {
                "name": name,
                "instruction": predictor.signature.instructions,
                "demos": len(predictor.demos),
            }
            for name, predictor in compiled.named_predictors()
        ]
        usage = {
            "teacher": _history_usage(teacher_lm, 0),
            "student": _history_usage(student_lm, 0),
        }
        return Prepared(
            method=self.name,
            plan=None,
            usage=usage,
            latency_s=time.perf_counter() - start,
            report={
                "optimizer": "dspy.MIPROv2",
                "dspy_version": getattr(dspy, "__version__", "?"),
                "predictors": predictors,
                "num_candidates": self.num_candidates,
                "num_trials": self.num_trials,
                "budget": "not enforced (DSPy has no token budget); tokens reported",
            },
            state=_DspyState(program=compiled, student_lm=student_lm, lock=threading.Lock()),
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
        """Run the compiled DSPy program on the row (errors are recorded, not raised)."""
        state = prepared.state
        if not isinstance(state, _DspyState):
            raise UsageError(f"prepared state of {self.name!r} holds no compiled DSPy program")
        return await asyncio.to_thread(self._predict, state, row)

    def _predict(self, state: _DspyState, row: Row) -> Prediction:
        import dspy

        start = time.perf_counter()
        with state.lock:
            mark = len(state.student_lm.history)
            raw = ""
            error: str | None = None
            reasoning = ""
            try:
                with dspy.context(lm=state.student_lm):
                    result = state.program(question=row["question"])
                raw = str(getattr(result, "answer", "") or "")
                reasoning = str(getattr(result, "reasoning", "") or "")
            except Exception as exc:  # DSPy adapters raise many types on malformed replies
                error = f"{type(exc).__name__}: {exc}"
            usage = _history_usage(state.student_lm, mark)
        answer = extract_final_number(raw) if error is None else None
        if answer is None and error is None:
            error = "no number in the program's answer"
        return Prediction(
            answer=answer,
            raw=raw,
            usage=usage,
            latency_s=time.perf_counter() - start,
            trace={"reasoning": reasoning[:2000], "answer_text": raw},
            error=error,
        )
