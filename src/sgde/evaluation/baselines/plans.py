"""Baseline methods expressed as plans, and the single-prompt program optimisers produce.

Every plan here takes ``question`` (string) as input. Plans of the chain-of-thought family
(zero-shot CoT, few-shot CoT, self-consistency samples, and every optimised prompt) are two
nodes: an LLM node ``solve`` that writes free text, then a code node ``extract`` whose code
is :mod:`sgde.evaluation.baselines.final_number` (it runs in the sandbox like any code node)
and yields ``answer``. The direct-answer plan is one LLM node with ``output_schema``
``{answer: number}``. PAL and PoT plans are one LLM node writing a program (``solve.text``);
the method runs that program in the sandbox itself, because a plan's code nodes hold fixed,
reviewed code, never code a model wrote at run time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from sgde.errors import DataError
from sgde.plan.model import CodeNode, LlmNode, Plan
from sgde.runtime.numbers import to_number
from sgde.runtime.render import load_prompt as load_package_prompt
from sgde.runtime.render import prompt_environment
from sgde.task import TaskSpec

__all__ = [
    "CODE_MAX_TOKENS",
    "COT_MAX_TOKENS",
    "Demo",
    "PromptProgram",
    "cot_plan",
    "default_cot_instruction",
    "demos_from_rows",
    "direct_plan",
    "final_number_source",
    "format_number",
    "load_prompt",
    "pal_plan",
    "pot_plan",
    "render_prompt",
    "row_id",
]

COT_MAX_TOKENS = 512
"""Completion limit of chain-of-thought replies."""
CODE_MAX_TOKENS = 384
"""Completion limit of PAL/PoT programs."""
_RAW_END = "{% endraw %}"


@cache
def load_prompt(name: str) -> str:
    """Read a prompt template shipped in ``sgde/evaluation/prompts/<name>.j2``.

    Args:
        name: File name without the ``.j2`` suffix (e.g. ``"baseline_cot_user"``).

    Returns:
        The template text without its trailing newline.
    """
    return load_package_prompt(f"{name}.j2", "sgde.evaluation").rstrip("\n")


def render_prompt(name: str, **values: Any) -> str:
    """Render a shipped prompt template at build time (strict: unknown names fail).

    Args:
        name: File name without ``.j2``.
        **values: Template variables.

    Returns:
        The rendered text.
    """
    return prompt_environment().from_string(load_prompt(name)).render(**values).strip()


@cache
def final_number_source() -> str:
    """Source of the answer-extraction code node (:mod:`.final_number`)."""
    path = resources.files("sgde.evaluation.baselines").joinpath("final_number.py")
    return path.read_text(encoding="utf-8")


def format_number(value: float | int) -> str:
    """Render a gold answer for a demo: integral values without ``.0``, no exponent.

    Args:
        value: The number.

    Returns:
        ``"42"`` for 42.0, ``"2.5"`` for 2.5, ``"12345678901234567"`` for 1.2345678901234567e16.
    """
    number = float(value)
    if math.isfinite(number) and number == int(number):
        return str(int(number))
    text = repr(number)
    if "e" in text or "E" in text:
        text = f"{number:.12f}".rstrip("0").rstrip(".")
    return text


def row_id(row: Mapping[str, Any], index: int) -> str:
    """A row's ``id`` as text, or ``"row<index>"`` when it has none."""
    value = row.get("id")
    return str(value) if value is not None else f"row{index}"


def _raw(text: str) -> str:
    """Wrap literal text so the executor's jinja2 rendering leaves it untouched."""
    return (
        "{% raw %}"
        + text.replace(_RAW_END, "{% endraw %}{{ '{% endraw %}' }}{% raw %}")
        + (_RAW_END)
    )


@dataclass(frozen=True)
class Demo:
    """One worked example shown to the student.

    Attributes:
        question: The example's question.
        answer: Its gold answer.
        rationale: A worked solution (bootstrapped from a model and verified to reach the
            gold answer), or None: then the demo shows only ``The answer is <answer>.``.
        source_id: Id of the training row it comes from; scoring on the training rows leaves
            a row's own demo out (leave-one-out), so a demo never answers its own question.
    """

    question: str
    answer: float | int
    rationale: str | None = None
    source_id: str | None = None

    def render(self) -> str:
        """The demo as prompt text."""
        return render_prompt(
            "baseline_demo",
            question=self.question,
            answer=format_number(self.answer),
            rationale=self.rationale,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "question": self.question,
            "answer": self.answer,
            "rationale": self.rationale,
            "source_id": self.source_id,
        }


def default_cot_instruction() -> str:
    """The zero-shot chain-of-thought instruction (the optimisers' starting point)."""
    return load_prompt("baseline_cot_system")


@dataclass(frozen=True)
class PromptProgram:
    """A single prompt for the student: an instruction (system prompt) plus demos.

    This is what prompt optimisers optimise. :meth:`to_plan` turns it into the two-node
    chain-of-thought plan (``solve`` → ``extract``); the answer-format line of the user
    prompt ("End your reply with ...") is fixed scaffolding, not part of the instruction.

    Attributes:
        instruction: The system prompt.
        demos: Worked examples placed before the question.
        temperature: Sampling temperature of ``solve``.
        max_tokens: Completion limit of ``solve``.
    """

    instruction: str
    demos: tuple[Demo, ...] = ()
    temperature: float = 0.0
    max_tokens: int = COT_MAX_TOKENS

    def without_source(self, source_id: str) -> PromptProgram:
        """This program minus the demos taken from training row ``source_id``."""
        kept = tuple(d for d in self.demos if d.source_id != source_id)
        if len(kept) == len(self.demos):
            return self
        return PromptProgram(self.instruction, kept, self.temperature, self.max_tokens)

    def user_template(self) -> str:
        """The ``solve`` node's prompt: literal demos, then the question template."""
        question = load_prompt("baseline_cot_user")
        if not self.demos:
            return question
        demos = "\n\n".join(d.render() for d in self.demos)
        return _raw(demos + "\n\n") + question

    def to_plan(
        self,
        *,
        name: str = "prompt",
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        task: TaskSpec | None = None,
    ) -> Plan:
        """The plan that runs this prompt and extracts the final number (or, for a typed
        task, every output by type: :func:`~sgde.evaluation.baselines.typed.typed_cot_plan`).

        Args:
            name: Plan name.
            description: Plan description.
            metadata: Provenance to keep in ``Plan.metadata``.
            task: A typed task, or None for ``question`` -> number ``answer``.

        Returns:
            A plan with input ``question`` and output ``answer`` (or the task's fields).
        """
        if task is not None:
            from sgde.evaluation.baselines.typed import typed_cot_plan  # typed imports this

            typed_meta: dict[str, Any] = {"demos": len(self.demos), **(metadata or {})}
            return typed_cot_plan(
                task,
                instruction=self.instruction,
                demos_text="\n\n".join(d.render() for d in self.demos),
                temperature=self.temperature,
                max_tokens=self.max_tokens,
                name=name,
                metadata=typed_meta,
            )
        solve = LlmNode(
            id="solve",
            description="Answer the question in free text, ending with the final number.",
            inputs={"question": "input.question"},
            system=self.instruction,
            prompt=self.user_template(),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
        )
        extract = CodeNode(
            id="extract",
            description="Deterministic final-number extraction (answer marker, else last number).",
            inputs={"text": "solve.text"},
            code=final_number_source(),
            outputs=["answer"],
        )
        meta: dict[str, Any] = {"demos": len(self.demos)}
        meta.update(metadata or {})
        return Plan(
            name=name,
            description=description,
            inputs={"question": "string"},
            outputs={"answer": "extract.answer"},
            nodes=[solve, extract],
            metadata=meta,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "instruction": self.instruction,
            "demos": [d.to_dict() for d in self.demos],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }


def demos_from_rows(rows: Iterable[Mapping[str, Any]]) -> tuple[Demo, ...]:
    """Question + gold-answer demos (no rationale) from labelled rows.

    Args:
        rows: Rows with ``question`` and ``answer``.

    Returns:
        One :class:`Demo` per row.

    Raises:
        DataError: When a row lacks a question or a numeric answer.
    """
    demos = []
    for index, row in enumerate(rows):
        question = row.get("question")
        answer = to_number(row.get("answer"))
        if not isinstance(question, str) or answer is None:
            raise DataError(
                f"training row {row_id(row, index)!r} needs a string 'question' and a numeric "
                f"'answer' (got keys {sorted(row)})",
                hint="use rows produced by `sgde synth` or load_gsm_hard()",
            )
        gold = row["answer"] if isinstance(row["answer"], int) else answer
        demos.append(Demo(question=question, answer=gold, source_id=row_id(row, index)))
    return tuple(demos)


def cot_plan(
    *,
    demos: Sequence[Demo] = (),
    instruction: str | None = None,
    temperature: float = 0.0,
    name: str = "baseline-cot",
) -> Plan:
    """Zero-shot (or, with ``demos``, few-shot) chain of thought + final-number extraction.

    Args:
        demos: Worked examples placed before the question.
        instruction: System prompt (default: :func:`default_cot_instruction`).
        temperature: Sampling temperature of the ``solve`` node.
        name: Plan name.

    Returns:
        The two-node plan ``solve`` → ``extract``.
    """
    program = PromptProgram(
        instruction=instruction if instruction is not None else default_cot_instruction(),
        demos=tuple(demos),
        temperature=temperature,
    )
    return program.to_plan(name=name, metadata={"method": name.removeprefix("baseline-")})


def direct_plan(*, name: str = "baseline-direct") -> Plan:
    """Direct answer: one LLM node constrained to ``{"answer": number}``."""
    node = LlmNode(
        id="solve",
        description="Answer with the final number only.",
        inputs={"question": "input.question"},
        system=load_prompt("baseline_direct_system"),
        prompt=load_prompt("baseline_direct_user"),
        output_schema={
            "type": "object",
            "properties": {"answer": {"type": "number"}},
            "required": ["answer"],
        },
        temperature=0.0,
        max_tokens=64,
    )
    return Plan(
        name=name,
        description="Direct numeric answer (JSON-constrained).",
        inputs={"question": "string"},
        outputs={"answer": "solve.answer"},
        nodes=[node],
        metadata={"method": "direct"},
    )


def _program_plan(style: str, name: str) -> Plan:
    node = LlmNode(
        id="solve",
        description=f"Write a Python program ({style.upper()}) that computes the answer.",
        inputs={"question": "input.question"},
        system=load_prompt(f"baseline_{style}_system"),
        prompt=load_prompt(f"baseline_{style}_user"),
        temperature=0.0,
        max_tokens=CODE_MAX_TOKENS,
    )
    return Plan(
        name=name,
        description=f"{style.upper()}: the student writes a program; sgde runs it in the sandbox.",
        inputs={"question": "string"},
        outputs={"program": "solve.text"},
        nodes=[node],
        metadata={"method": style},
    )


def pal_plan(*, name: str = "baseline-pal") -> Plan:
    """PAL: the student writes ``def solution():``; output ``program`` (the reply text)."""
    return _program_plan("pal", name)


def pot_plan(*, name: str = "baseline-pot") -> Plan:
    """PoT: the student writes a program assigning ``ans``; output ``program``."""
    return _program_plan("pot", name)
