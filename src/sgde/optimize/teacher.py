"""Structured teacher calls: JSON against a schema with retry-on-malformed, and code.

The teacher is just a :class:`~sgde.runtime.backend.Backend`. Its outputs are model text, so
every JSON answer is parsed and validated against a JSON schema (and grammar-constrained when
the backend can); a malformed answer goes back to the teacher with the error, up to
``retries`` times, then :class:`TeacherOutputError` is raised for the caller to fall back.
Prompts are jinja2 files in ``sgde/optimize/prompts/``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from sgde.errors import CompileError, OutputParseError
from sgde.models.usage import MeteredBackend, UsageMeter
from sgde.optimize.events import CompileEvent, EventSink, emit
from sgde.optimize.lift import extract_code
from sgde.runtime.backend import Backend, ChatRequest, Message, Usage
from sgde.runtime.parsing import parse_json_output
from sgde.runtime.render import prompt_environment

__all__ = [
    "Teacher",
    "TeacherCallRecord",
    "TeacherOutputError",
    "grammar_schema",
    "render_prompt",
]


class TeacherOutputError(CompileError):
    """The teacher's answer stayed malformed after every retry (recoverable by callers)."""


def render_prompt(name: str, **context: Any) -> str:
    """Render the package prompt ``prompts/<name>`` with ``context``.

    A fresh environment per call (no module-level state); parsing costs microseconds next to
    the model call the prompt is for.
    """
    env = prompt_environment("sgde.optimize", trim_blocks=True)
    return env.get_template(name).render(**context).strip() + "\n"


_GRAMMAR_UNSAFE = frozenset({"minLength", "maxLength", "minItems", "maxItems", "pattern"})


def grammar_schema(schema: Any) -> Any:
    """``schema`` without length/pattern limits, for grammar-constrained decoding.

    llama.cpp expands ``maxLength: 2000`` into thousands of nested rules and refuses the
    grammar; the limits are still enforced when the answer is validated.
    """
    if isinstance(schema, Mapping):
        return {k: grammar_schema(v) for k, v in schema.items() if k not in _GRAMMAR_UNSAFE}
    if isinstance(schema, list):
        return [grammar_schema(v) for v in schema]
    return schema


def _parse_json(text: str) -> Any:
    """The first JSON object in the teacher's answer, read by the runtime's lenient parser
    (fences, prose around it, raw newlines inside strings: measured on the 1.5B teacher, a
    rewrite answer failed three times on "Invalid control character")."""
    try:
        return parse_json_output(text, None)
    except OutputParseError as exc:
        raise ValueError(exc.message) from exc


@dataclass
class TeacherCallRecord:
    """Bookkeeping of one logical teacher call (for the report)."""

    purpose: str
    attempts: int
    ok: bool
    error: str | None = None


@dataclass
class Teacher:
    """Structured calls to the teacher backend; its usage is read from a usage ledger.

    Args:
        backend: The teacher model.
        max_tokens: Default completion limit of JSON calls.
        code_max_tokens: Default completion limit of code calls.
        retries: Extra attempts on malformed JSON.
        events: Optional progress listener (gets ``teacher_retry`` events).
        meter: The ledger ``backend`` records its calls in (under ``role``), when it does
            already (a compile's metered backends). Without one the teacher meters its backend
            into a ledger of its own.
        role: The ledger's role of the teacher's calls.
    """

    backend: Backend
    max_tokens: int = 512
    code_max_tokens: int = 512
    retries: int = 2
    events: EventSink | None = None
    calls: list[TeacherCallRecord] = field(default_factory=list)
    iteration: int = 0
    meter: UsageMeter | None = None
    role: str = "teacher"

    def __post_init__(self) -> None:
        if self.meter is None:
            self.meter = UsageMeter()
            self.backend = MeteredBackend(self.role, self.backend, self.meter)

    @property
    def usage(self) -> Usage:
        """The teacher's usage so far (from the ledger: the one source)."""
        assert self.meter is not None  # set in __post_init__
        return self.meter.role_usage(self.role)

    def _system(self) -> Message:
        return Message("system", render_prompt("system.md").strip())

    async def _chat(
        self,
        messages: list[Message],
        *,
        temperature: float,
        seed: int | None,
        max_tokens: int,
        schema: Mapping[str, Any] | None,
    ) -> str:
        request = ChatRequest(
            messages=tuple(messages),
            temperature=temperature,
            max_tokens=max_tokens,
            seed=seed,
            json_schema=(
                grammar_schema(schema) if schema is not None and self._constrained() else None
            ),
        )
        response = await self.backend.chat(request)
        return response.text

    def _constrained(self) -> bool:
        caps = self.backend.capabilities
        return bool(caps.json_schema)

    async def json(
        self,
        prompt: str,
        schema: Mapping[str, Any],
        *,
        purpose: str,
        temperature: float = 0.0,
        seed: int | None = None,
        max_tokens: int | None = None,
        check: Any = None,
        retries: int | None = None,
    ) -> dict[str, Any]:
        """Ask for a JSON object valid under ``schema``.

        Args:
            prompt: The rendered user prompt.
            schema: JSON schema of the answer (sent as a grammar when supported).
            purpose: Short label for the report (``"critique"``, ...).
            temperature: Sampling temperature.
            seed: Sampling seed.
            max_tokens: Completion limit (default: the teacher's).
            check: Optional ``callable(dict) -> str | None`` with extra semantic checks; a
                returned message is sent back like a schema error.
            retries: Extra attempts for this call (default: the teacher's).

        Raises:
            TeacherOutputError: when no attempt gives a valid answer.
            BudgetExceeded: from a metered backend; never swallowed.
        """
        messages = [self._system(), Message("user", prompt)]
        if not self._constrained():
            messages[-1] = Message(
                "user", prompt + "\nAnswer with one JSON object only, no other text.\n"
            )
        error = ""
        tries = (self.retries if retries is None else retries) + 1
        for attempt in range(tries):
            text = await self._chat(
                messages,
                temperature=temperature,
                seed=None if seed is None else seed + attempt,
                max_tokens=max_tokens or self.max_tokens,
                schema=schema,
            )
            try:
                data = _parse_json(text)
                jsonschema.validate(data, dict(schema))
                extra = check(data) if check is not None else None
                if extra:
                    raise ValueError(extra)
            except (ValueError, jsonschema.ValidationError) as exc:
                error = exc.message if isinstance(exc, jsonschema.ValidationError) else str(exc)
                emit(
                    self.events,
                    CompileEvent(
                        "teacher_retry",
                        self.iteration,
                        f"malformed teacher answer for {purpose}: {error[:120]}",
                        teacher_tokens=self.usage.total_tokens,
                    ),
                )
                messages = [
                    *messages[:2],
                    Message("assistant", text[:2000]),
                    Message(
                        "user",
                        f"That answer is invalid: {error}. Reply again with one JSON object "
                        f"that follows this schema exactly:\n{json.dumps(schema)}",
                    ),
                ]
                continue
            self.calls.append(TeacherCallRecord(purpose, attempt + 1, True))
            return dict(data)
        self.calls.append(TeacherCallRecord(purpose, tries, False, error))
        raise TeacherOutputError(
            f"the teacher gave no valid JSON for {purpose} after {tries} attempts: {error}",
            hint="use a stronger teacher (--teacher) or raise the retries in CompileSettings",
        )

    async def code(
        self,
        prompt: str,
        *,
        purpose: str,
        temperature: float = 0.0,
        seed: int | None = None,
        max_tokens: int | None = None,
    ) -> str:
        """Ask for Python code; returns the code in the answer (fences stripped).

        Whether the code is *right* is for the caller to verify in the sandbox.
        """
        text = await self._chat(
            [self._system(), Message("user", prompt)],
            temperature=temperature,
            seed=seed,
            max_tokens=max_tokens or self.code_max_tokens,
            schema=None,
        )
        self.calls.append(TeacherCallRecord(purpose, 1, True))
        return extract_code(text)
