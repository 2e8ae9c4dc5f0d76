"""What the prompt optimisers share: a token meter, teacher calls, scoring, the method shell.

Budget: every optimiser is given a token budget (prompt + completion tokens, teacher and
student together, spent while preparing). Both backends are wrapped in a
:class:`BudgetedBackend` that counts each response's ``usage`` (or, when a backend reports
none, a generous character estimate) and refuses a call *before* it is made when the tokens
spent and reserved so far plus the call's estimate (prompt estimated at ~3 characters per
token, plus ``max_tokens``) would pass the budget. The optimiser then stops and keeps the
best prompt found so far. Because the estimate of the prompt is generous and the completion
is bounded by ``max_tokens``, the budget is not overrun unless a tokenizer needs more than
one token per 3 characters. A :class:`~sgde.errors.BudgetExceeded` raised by the model hub's
own budget stops the optimiser the same way.

Scoring: a candidate prompt is scored on the training rows with the student; a row's own
demo is left out of the prompt that answers it (leave-one-out), so demos never leak the
answer they are scored on. Ties keep the earlier candidate.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sgde.errors import BudgetExceeded, OutputParseError, UsageError
from sgde.evaluation.baselines.base import (
    Prediction,
    Prepared,
    Row,
    predict_with_plan,
    require_plan,
)
from sgde.evaluation.baselines.plans import (
    PromptProgram,
    default_cot_instruction,
    demos_from_rows,
    render_prompt,
    row_id,
)
from sgde.evaluation.baselines.typed import DEFAULT_TYPED_INSTRUCTION, examples_block
from sgde.evaluation.metrics import answer_correct
from sgde.models.defaults import DEFAULT_TEACHER
from sgde.models.request import estimate_prompt_tokens, estimate_tokens
from sgde.models.usage import UsageMeter
from sgde.runtime.backend import Backend, Capabilities, ChatRequest, ChatResponse, Message, Usage
from sgde.runtime.calls import CodeRunner
from sgde.runtime.parsing import parse_json_output
from sgde.task import TaskSpec, default_metric

__all__ = [
    "BudgetedBackend",
    "Candidate",
    "OptimizerMethod",
    "OptimizerRun",
    "RowOutcome",
    "TokenMeter",
    "ask_json",
    "examples_text",
]

_MAX_INSTRUCTION_CHARS = 2000


class TokenMeter:
    """Counts tokens per role against an optional budget; refuses calls that would pass it.

    Args:
        budget: Token limit (prompt + completion, all roles); None means unlimited.
    """

    def __init__(self, budget: int | None) -> None:
        if budget is not None and budget < 0:
            raise UsageError(f"token budget must be >= 0, got {budget}")
        self.budget = budget
        self.ledger = UsageMeter()
        """Where the tokens are counted (the same ledger type as every other count)."""
        self.reserved = 0
        self.refused = 0

    @property
    def usage(self) -> dict[str, Usage]:
        """Usage per role so far (copies)."""
        return self.ledger.usage()

    @property
    def spent(self) -> int:
        """Tokens spent so far (all roles)."""
        return self.ledger.total().total_tokens

    @property
    def remaining(self) -> int | None:
        """Tokens left (None when unlimited)."""
        return None if self.budget is None else max(0, self.budget - self.spent)

    def reserve(self, role: str, estimate: int) -> None:
        """Reserve ``estimate`` tokens for a call, or raise when that would pass the budget.

        Raises:
            BudgetExceeded: The call would pass the budget; nothing is reserved.
        """
        if self.budget is not None and self.spent + self.reserved + estimate > self.budget:
            self.refused += 1
            raise BudgetExceeded(
                f"a {role} call of up to ~{estimate} tokens would pass the optimiser's budget "
                f"of {self.budget} tokens ({self.spent} spent)",
                spent={r: u.to_dict() for r, u in self.usage.items()},
                hint="raise the method's token budget",
            )
        self.reserved += estimate

    def commit(self, role: str, estimate: int, usage: Usage) -> None:
        """Release a reservation and record what the call actually used."""
        self.reserved = max(0, self.reserved - estimate)
        self.ledger.record(role, usage)

    def snapshot(self) -> dict[str, Usage]:
        """A copy of the usage per role."""
        return self.ledger.usage()


class BudgetedBackend:
    """A :class:`~sgde.runtime.backend.Backend` that counts usage on a :class:`TokenMeter`.

    It does not own the wrapped backend: :meth:`aclose` does nothing.

    Args:
        inner: The backend to call.
        meter: Where tokens are counted.
        role: Role name the tokens are counted under (``"teacher"``, ``"student"``).
    """

    def __init__(self, inner: Backend, meter: TokenMeter, role: str) -> None:
        self.inner = inner
        self.meter = meter
        self.role = role

    @property
    def name(self) -> str:
        """The wrapped backend's name."""
        return self.inner.name

    @property
    def capabilities(self) -> Capabilities:
        """The wrapped backend's capabilities."""
        return self.inner.capabilities

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """Reserve, call, record. Raises BudgetExceeded before an over-budget call."""
        estimate = estimate_prompt_tokens(request) + request.max_tokens
        self.meter.reserve(self.role, estimate)
        usage = Usage()
        try:
            response = await self.inner.chat(request)
            usage = response.usage
            if usage.total_tokens == 0:
                usage = Usage(
                    prompt_tokens=estimate_prompt_tokens(request),
                    completion_tokens=estimate_tokens(response.text),
                    calls=1,
                )
            return response
        finally:
            self.meter.commit(self.role, estimate, usage)

    async def aclose(self) -> None:
        """Nothing to release (the wrapped backend belongs to the caller)."""


async def ask_json(
    backend: Backend,
    prompt: str,
    schema: Mapping[str, Any],
    *,
    temperature: float,
    seed: int,
    sample_index: int = 0,
    max_tokens: int = 400,
) -> dict[str, Any] | None:
    """One schema-constrained teacher call; None when the reply does not parse.

    The schema is sent as a grammar when the backend supports it; the reply is parsed and
    repaired with :func:`sgde.runtime.parsing.parse_json_output` either way.

    Raises:
        BudgetExceeded: From the meter, before the call.
    """
    caps = backend.capabilities
    constrained = caps.json_schema or caps.json_object
    text = prompt if constrained else prompt + "\n\nReply with one JSON object only."
    request = ChatRequest(
        messages=(Message("user", text),),
        temperature=temperature,
        max_tokens=max_tokens,
        seed=seed,
        json_schema=schema if constrained else None,
        sample_index=sample_index,
    )
    response = await backend.chat(request)
    try:
        return parse_json_output(response.text, dict(schema))
    except OutputParseError:
        return None


def clean_instruction(value: Any) -> str | None:
    """A usable instruction from a teacher's JSON value (None when empty)."""
    if not isinstance(value, str):
        return None
    text = value.strip().strip('"').strip()
    if not text:
        return None
    return text[:_MAX_INSTRUCTION_CHARS]


def examples_text(rows: Sequence[Row], *, limit: int = 5) -> str:
    """Training rows as ``Question/Answer`` text for teacher prompts."""
    return "\n\n".join(d.render() for d in demos_from_rows(rows[:limit]))


@dataclass
class RowOutcome:
    """A candidate's result on one training row."""

    row_id: str
    question: str
    gold: Any
    answer: Any
    correct: bool
    reply: str
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (reply shortened)."""
        return {
            "row_id": self.row_id,
            "gold": self.gold,
            "answer": self.answer,
            "correct": self.correct,
            "reply": self.reply[:400],
            "error": self.error,
        }


@dataclass
class Candidate:
    """A scored prompt."""

    program: PromptProgram
    origin: str
    score: float | None = None
    outcomes: list[RowOutcome] = field(default_factory=list)
    step: int = 0

    @property
    def failures(self) -> list[RowOutcome]:
        """Training rows this candidate got wrong."""
        return [o for o in self.outcomes if not o.correct]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "origin": self.origin,
            "step": self.step,
            "score": self.score,
            "instruction": self.program.instruction,
            "demos": len(self.program.demos),
            "correct": [o.row_id for o in self.outcomes if o.correct],
        }


class OptimizerRun:
    """State of one optimiser run: metered backends, scoring, the candidate history.

    Args:
        name: Method name (for reports).
        trainset: The labelled training rows.
        teacher: Teacher backend (wrapped in a meter here).
        student: Student backend (wrapped in a meter here).
        sandbox: Sandbox for the extraction code node.
        budget: Token budget for the whole run (teacher + student).
        seed: Base seed.
        task: A typed task (prompts are then typed CoT plans scored by the task's metric),
            or None for GSM rows (``question`` -> number ``answer``).
    """

    def __init__(
        self,
        name: str,
        trainset: Sequence[Row],
        *,
        teacher: Backend,
        student: Backend,
        sandbox: CodeRunner | None,
        budget: int | None,
        seed: int,
        task: TaskSpec | None = None,
    ) -> None:
        if not trainset:
            raise UsageError(f"{name} needs at least one training row")
        self.name = name
        self.trainset = list(trainset)
        self.meter = TokenMeter(budget)
        self.teacher = BudgetedBackend(teacher, self.meter, "teacher")
        self.student = BudgetedBackend(student, self.meter, "student")
        self.sandbox = sandbox
        self.seed = seed
        self.task = task
        self.history: list[Candidate] = []
        self.teacher_calls = 0
        self.teacher_parse_failures = 0
        self.stopped_by: str | None = None
        self.notes: dict[str, Any] = {}
        self._scores: dict[PromptProgram, Candidate] = {}
        self._start = time.perf_counter()

    @contextmanager
    def budget_guard(self) -> Iterator[None]:
        """Turn BudgetExceeded into a recorded stop (the caller's loop ends)."""
        try:
            yield
        except BudgetExceeded as exc:
            self.stopped_by = f"budget: {exc.message}"

    @property
    def exhausted(self) -> bool:
        """Whether the budget stopped the run."""
        return self.stopped_by is not None and self.stopped_by.startswith("budget")

    async def ask_field(
        self,
        template: str,
        field_name: str,
        *,
        temperature: float,
        sample_index: int,
        **values: Any,
    ) -> str | None:
        """Ask the teacher for one text field (prompt ``template``, JSON-constrained).

        Returns:
            The field's cleaned text, or None when the reply had no usable value.
        """
        prompt = render_prompt(template, **values)
        schema = {
            "type": "object",
            "properties": {field_name: {"type": "string", "minLength": 1}},
            "required": [field_name],
        }
        self.teacher_calls += 1
        data = await ask_json(
            self.teacher,
            prompt,
            schema,
            temperature=temperature,
            seed=self.seed,
            sample_index=sample_index,
        )
        text = clean_instruction(data.get(field_name) if data else None)
        if text is None:
            self.teacher_parse_failures += 1
        return text

    async def propose(
        self, template: str, *, temperature: float, sample_index: int, **values: Any
    ) -> str | None:
        """Ask the teacher for one instruction (``{"instruction": ...}``)."""
        return await self.ask_field(
            template,
            "instruction",
            temperature=temperature,
            sample_index=sample_index,
            **values,
        )

    def examples(self) -> str:
        """The training rows as solved examples for the teacher's prompts."""
        if self.task is not None:
            return examples_block(self.task, self.trainset)
        return examples_text(self.trainset)

    async def score(self, program: PromptProgram, *, origin: str, step: int = 0) -> Candidate:
        """Score a prompt on the training rows (memoised per prompt); record it."""
        known = self._scores.get(program)
        if known is not None:
            return known
        outcomes: list[RowOutcome] = []
        for index, row in enumerate(self.trainset):
            rid = row_id(row, index)
            plan = program.without_source(rid).to_plan(
                name=f"{self.name}-candidate", task=self.task
            )
            prediction: Prediction = await predict_with_plan(
                plan,
                row,
                student=self.student,
                sandbox=self.sandbox,
                seed=self.seed,
                task=self.task,
            )
            gold: Any
            if self.task is not None:
                gold = {k: row.get(k) for k in self.task.outputs}
                right = default_metric(self.task)(row, prediction.outputs or {}).value == 1.0
            else:
                gold = row.get("answer")
                right = answer_correct(prediction.answer, gold)
            outcomes.append(
                RowOutcome(
                    row_id=rid,
                    question=str(row.get("question", "")),
                    gold=gold,
                    answer=prediction.answer,
                    correct=right,
                    reply=prediction.raw,
                    error=prediction.error,
                )
            )
        candidate = Candidate(
            program=program,
            origin=origin,
            score=sum(o.correct for o in outcomes) / len(outcomes),
            outcomes=outcomes,
            step=step,
        )
        self._scores[program] = candidate
        self.history.append(candidate)
        return candidate

    def best(self) -> Candidate | None:
        """The best-scoring candidate (the earliest among ties), or None."""
        best: Candidate | None = None
        for candidate in self.history:
            if candidate.score is None:
                continue
            if best is None or best.score is None or candidate.score > best.score:
                best = candidate
        return best

    def prepared(self, fallback: PromptProgram) -> Prepared:
        """The run's result: the best prompt as a plan, usage and the history."""
        best = self.best()
        program = best.program if best is not None else fallback
        plan = program.to_plan(
            task=self.task,
            name=f"{self.name}-optimised",
            description=f"Prompt optimised by {self.name} on {len(self.trainset)} training rows.",
            metadata={
                "method": self.name,
                "train_accuracy": best.score if best is not None else None,
                "tokens_spent": self.meter.spent,
            },
        )
        report: dict[str, Any] = {
            "best": best.to_dict() if best is not None else None,
            "program": program.to_dict(),
            "candidates": [c.to_dict() for c in self.history],
            "budget": self.meter.budget,
            "tokens_spent": self.meter.spent,
            "teacher_calls": self.teacher_calls,
            "teacher_parse_failures": self.teacher_parse_failures,
            "stopped_by": self.stopped_by or "finished",
        }
        report.update(self.notes)
        return Prepared(
            method=self.name,
            plan=plan,
            usage=self.meter.snapshot(),
            latency_s=time.perf_counter() - self._start,
            report=report,
            task=self.task,
        )


class OptimizerMethod(abc.ABC):
    """The :class:`~sgde.evaluation.baselines.base.Method` shell of a prompt optimiser.

    Subclasses implement :meth:`optimize`; predicting runs the optimised prompt's plan.
    """

    uses_teacher = True
    name = "optimizer"
    supports_typed_tasks = False
    """Whether :meth:`bind_task` accepts a typed task (the optimiser's prompts are generic)."""
    task: TaskSpec | None = None

    def bind_task(self, task: TaskSpec, plan: Any = None) -> None:
        """Optimise prompts for a typed task (typed CoT plans scored by its metric).

        Raises:
            UsageError: the optimiser's teacher prompts are written for numeric questions.
        """
        if not self.supports_typed_tasks:
            raise UsageError(
                f"prompt optimiser {self.name!r} handles GSM-style numeric questions only",
                hint="use ape on typed tasks",
            )
        self.task = task

    def unavailable_reason(self) -> str | None:
        """Always available (needs only a teacher and a student)."""
        return None

    @abc.abstractmethod
    async def optimize(self, run: OptimizerRun) -> None:
        """Search for a better prompt, scoring candidates with ``run.score``.

        Extra report fields go into ``run.notes`` as the search goes, so they survive a
        stop by the budget.
        """

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
        """Run the optimiser within the budget; return the best prompt as a plan."""
        if teacher is None:
            raise UsageError(
                f"method {self.name!r} is a prompt optimiser and needs a teacher",
                hint=f"bind a teacher model (e.g. --model teacher={DEFAULT_TEACHER})",
            )
        run = OptimizerRun(
            self.name,
            trainset,
            teacher=teacher,
            student=student,
            sandbox=sandbox,
            budget=budget,
            seed=seed,
            task=self.task,
        )
        with run.budget_guard():
            await self.optimize(run)
        return run.prepared(self.start_program())

    def start_program(self) -> PromptProgram:
        """The prompt an optimiser starts from (zero-shot CoT, typed CoT for a typed task)."""
        if self.task is not None:
            return PromptProgram(instruction=DEFAULT_TYPED_INSTRUCTION)
        return PromptProgram(instruction=default_cot_instruction())

    async def predict(
        self,
        prepared: Prepared,
        row: Row,
        *,
        student: Backend,
        sandbox: CodeRunner | None,
        seed: int = 0,
    ) -> Prediction:
        """Run the optimised prompt on the row."""
        return await predict_with_plan(
            require_plan(prepared),
            row,
            student=student,
            sandbox=sandbox,
            seed=seed,
            task=prepared.task,
        )
