"""Baseline plans for a typed task (:class:`sgde.task.TaskSpec`), not only a final number.

The GSM baselines (:mod:`.plans`) read ``question`` and produce a number ``answer``. For any
other task the same methods are built from its spec: the prompts state the task text, show
every input and ask for every output with its type; the answers are read per type.

- direct: one LLM node whose JSON output schema is the task's outputs (typed fields).
- CoT (and every prompt a prompt optimiser writes): ``solve`` writes free text ending with
  the answer line(s), then the code node ``extract`` (:mod:`.typed_answer`, in the sandbox)
  reads each output; the task's metric coerces and judges them.
- PAL: the student writes ``solution()`` returning the answer (a dict of the outputs when
  there are several); :func:`program_outputs` maps its value onto the outputs.
- student alone (cold start): the compiler's starting plan for the task, unimproved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from typing import Any

from sgde.evaluation.baselines.plans import _raw  # one home of the raw-text wrapper
from sgde.optimize.coldstart import plan_input_type
from sgde.plan.model import CodeNode, LlmNode, Plan
from sgde.task import FieldType, TaskSpec

__all__ = [
    "DEFAULT_TYPED_INSTRUCTION",
    "answer_format",
    "examples_block",
    "inputs_block",
    "program_outputs",
    "task_block",
    "typed_cot_plan",
    "typed_direct_plan",
    "typed_extract_source",
    "typed_program_plan",
]


def task_block(spec: TaskSpec) -> str:
    """The task text and its outputs with their types, as literal prompt text."""
    outputs = "; ".join(f"{name}: {ftype.describe()}" for name, ftype in spec.outputs.items())
    return _raw(f"Task: {spec.description}\nOutputs: {outputs}")


def inputs_block(spec: TaskSpec) -> str:
    """One ``name: {{ name }}`` line per input (a jinja2 template for the executor)."""
    return "\n".join(f"{name}: {{{{ {name} }}}}" for name in spec.inputs)


def _placeholder(ftype: FieldType) -> str:
    if ftype.kind == "date":
        return "YYYY-MM-DD"
    if ftype.kind == "enum":
        return " or ".join(ftype.labels or ())
    if ftype.kind == "list":
        return "[item, item, ...]"
    if ftype.kind == "boolean":
        return "true or false"
    return f"<{ftype.kind}>"


def answer_format(spec: TaskSpec) -> str:
    """The closing instruction: how the reply must state the output(s)."""
    if len(spec.outputs) == 1:
        ((_name, ftype),) = spec.outputs.items()
        return f'End your reply with the line "Answer: {_placeholder(ftype)}".'
    lines = "\n".join(f"{name}: {_placeholder(t)}" for name, t in spec.outputs.items())
    return "End your reply with these lines:\n" + lines


def examples_block(spec: TaskSpec, rows: Sequence[Mapping[str, Any]], *, limit: int = 5) -> str:
    """Solved training rows as text (teacher prompts of the prompt optimisers)."""
    parts = []
    for row in rows[:limit]:
        ins = "\n".join(f"{k}: {row.get(k)}" for k in spec.inputs)
        outs = "\n".join(f"{k}: {_show(row.get(k))}" for k in spec.outputs)
        parts.append(f"{ins}\n{outs}")
    return "\n\n".join(parts)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@cache
def _extractor_source() -> str:
    path = resources.files("sgde.evaluation.baselines").joinpath("typed_answer.py")
    return path.read_text(encoding="utf-8")


def typed_extract_source(spec: TaskSpec) -> str:
    """The ``extract`` node's code: :mod:`.typed_answer` with the task's fields filled in."""
    fields = [
        (name, t.kind, list(t.labels) if t.labels else None) for name, t in spec.outputs.items()
    ]
    source = _extractor_source()
    marker = (
        "FIELDS: list[tuple[str, str, list[str] | None]] = []  # the plan's code fills this line"
    )
    return source.replace(marker, f"FIELDS = {fields!r}", 1)


def _plan(
    spec: TaskSpec, name: str, nodes: list[Any], outputs: dict[str, str], method: str
) -> Plan:
    return Plan(
        name=name,
        description=spec.description,
        inputs={k: plan_input_type(t) for k, t in spec.inputs.items()},
        outputs=outputs,
        nodes=nodes,
        metadata={"method": method, "task": spec.to_metadata()},
    )


def typed_direct_plan(spec: TaskSpec, *, name: str = "baseline-direct") -> Plan:
    """Direct answer: one LLM node constrained to the task's typed outputs."""
    node = LlmNode(
        id="solve",
        description="Answer with the outputs only (JSON-constrained).",
        inputs={k: f"input.{k}" for k in spec.inputs},
        system="You answer tasks exactly. Reply with the answer only, no explanation.",
        prompt=task_block(spec) + "\n\n" + inputs_block(spec),
        output_schema=spec.output_schema(),
        temperature=0.0,
        max_tokens=32 + 48 * len(spec.outputs),
    )
    return _plan(spec, name, [node], {k: f"solve.{k}" for k in spec.outputs}, "direct")


DEFAULT_TYPED_INSTRUCTION = "You solve tasks carefully. Think step by step, then answer."


def typed_cot_plan(
    spec: TaskSpec,
    *,
    instruction: str | None = None,
    demos_text: str = "",
    temperature: float = 0.0,
    max_tokens: int = 512,
    name: str = "baseline-cot",
    metadata: Mapping[str, Any] | None = None,
) -> Plan:
    """Chain of thought for the task, then typed extraction of every output.

    Args:
        spec: The task.
        instruction: System prompt (default: a generic step-by-step instruction).
        demos_text: Solved examples placed before the inputs (literal text).
        temperature: Sampling temperature of ``solve``.
        max_tokens: Completion limit of ``solve``.
        name: Plan name.
        metadata: Extra plan metadata.
    """
    demos = _raw("Solved examples:\n\n" + demos_text + "\n\n") if demos_text else ""
    prompt = (
        task_block(spec)
        + "\n\n"
        + demos
        + inputs_block(spec)
        + "\n\n"
        + _raw("Think step by step. " + answer_format(spec))
    )
    solve = LlmNode(
        id="solve",
        description="Work through the task in free text, ending with the answer line(s).",
        inputs={k: f"input.{k}" for k in spec.inputs},
        system=instruction or DEFAULT_TYPED_INSTRUCTION,
        prompt=prompt,
        temperature=temperature,
        max_tokens=max_tokens,
    )
    extract = CodeNode(
        id="extract",
        description="Deterministic typed extraction of the outputs (JSON, name: value lines, "
        "answer marker, then the last value of the type).",
        inputs={"text": "solve.text"},
        code=typed_extract_source(spec),
        outputs=list(spec.outputs),
    )
    plan = _plan(spec, name, [solve, extract], {k: f"extract.{k}" for k in spec.outputs}, "cot")
    if metadata:
        plan = plan.model_copy(update={"metadata": {**plan.metadata, **metadata}})
    return plan


def typed_program_plan(spec: TaskSpec, *, name: str = "baseline-pal") -> Plan:
    """PAL for the task: the student writes ``def solution():`` (output ``program``)."""
    if len(spec.outputs) == 1:
        returns = f"returns the answer ({next(iter(spec.outputs.values())).describe()})"
    else:
        returns = "returns a dict with the keys " + ", ".join(
            f'"{k}" ({t.describe()})' for k, t in spec.outputs.items()
        )
    system = (
        "You write Python to solve tasks. Write a function solution() that takes no "
        f"arguments, works from the values in the task, and {returns}. Dates are returned as "
        "'YYYY-MM-DD' text. Reply with one ```python code block and nothing else. "
        "Do not print, do not read input."
    )
    node = LlmNode(
        id="solve",
        description="Write a Python program (PAL) that computes the outputs.",
        inputs={k: f"input.{k}" for k in spec.inputs},
        system=system,
        prompt=task_block(spec)
        + "\n\n"
        + inputs_block(spec)
        + "\n\n"
        + _raw("Write def solution(): that returns the answer."),
        temperature=0.0,
        max_tokens=384,
    )
    return _plan(spec, name, [node], {"program": "solve.text"}, "pal")


def program_outputs(spec: TaskSpec, value: Any) -> dict[str, Any]:
    """The outputs of a program's return value: a single output takes the value itself
    (or the value under its name in a dict); several outputs are read from a dict."""
    names = list(spec.outputs)
    if isinstance(value, Mapping):
        lowered = {str(k).lower(): v for k, v in value.items()}
        found = {n: lowered.get(n.lower()) for n in names}
        if len(names) == 1 and found[names[0]] is None and len(value) == 1:
            found[names[0]] = next(iter(value.values()))
        return found
    if len(names) == 1:
        return {names[0]: value}
    if isinstance(value, (list, tuple)) and len(value) == len(names):
        return dict(zip(names, value, strict=True))
    return dict.fromkeys(names)
