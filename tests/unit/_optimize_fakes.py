"""Shared fakes for the compiler's unit tests: duck-eggs rows, a scripted teacher, a fake
student, and an in-process code runner (tests only: it runs the fixed code of these tests,
never model output)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from sgde.errors import BudgetExceeded, SandboxError
from sgde.plan.model import CodeNode, LlmNode, Plan
from sgde.runtime.backend import Capabilities, ChatRequest
from sgde.testing import FunctionBackend

TEXT = (
    "Janet's ducks lay {a} eggs per day. She eats {b} for breakfast every morning and "
    "bakes muffins for her friends every day with {c}. She sells the remainder at the "
    "farmers' market daily for ${d} per fresh duck egg. How much in dollars does she make "
    "every day at the farmers' market?"
)
VALUES = [(16, 3, 4, 2), (1600, 31, 47, 7), (9021, 250, 33, 13), (4500, 120, 80, 3)]


def row(a: int, b: int, c: int, d: int) -> dict[str, Any]:
    return {"question": TEXT.format(a=a, b=b, c=c, d=d), "answer": (a - b - c) * d}


ROWS = [row(*v) for v in VALUES[:3]]

GOOD_SOLUTION = """def solution():
    eggs_per_day = {a}
    eaten = {b}
    baked = {c}
    price = {d}
    return (eggs_per_day - eaten - baked) * price
"""
# Right on the first row only: a spurious condition the lifted code keeps as a constant.
BAD_SOLUTION = """def solution():
    eggs_per_day = {a}
    eaten = {b}
    baked = {c}
    price = {d}
    if eggs_per_day > 100:
        return 0
    return (eggs_per_day - eaten - baked) * price
"""
GOOD_RUN = """def run(eggs_per_day, eaten, baked, price):
    return {"answer": (eggs_per_day - eaten - baked) * price}
"""
REPAIRED = "```python\n" + GOOD_RUN + "```"


def numbers(text: str) -> list[int]:
    return [int(x.replace(",", "")) for x in re.findall(r"\d[\d,]*", text)]


def single_plan() -> Plan:
    node = LlmNode(
        id="solve",
        inputs={"question": "input.question"},
        system="Answer the question.",
        prompt="Question: {{ question }}",
        output_schema={
            "type": "object",
            "properties": {"answer": {"type": "number"}},
            "required": ["answer"],
        },
    )
    return Plan(
        name="duck_eggs",
        inputs={"question": "string"},
        outputs={"answer": "solve.answer"},
        nodes=[node],
    )


class InProcessRunner:
    """Implements the CodeRunner protocol by exec() — for the fixed test code only."""

    def __init__(self) -> None:
        self.calls = 0

    async def call(
        self,
        code: str,
        kwargs: dict[str, Any],
        *,
        entry: str = "run",
        timeout_s: float | None = None,
    ) -> Any:
        self.calls += 1
        env: dict[str, Any] = {}
        try:
            exec(compile(code, "<test>", "exec"), env)
            result = env[entry](**kwargs)
        except Exception as exc:  # mirrors the sandbox's runtime-error reporting
            raise SandboxError(f"{type(exc).__name__}: {exc}", rule="runtime-error") from exc
        return json.loads(json.dumps(result))


def user_text(req: ChatRequest) -> str:
    return "\n".join(m.content for m in req.messages if m.role == "user")


def system_text(req: ChatRequest) -> str:
    return "\n".join(m.content for m in req.messages if m.role == "system")


def case_text(prompt: str) -> str:
    """The case of a solve prompt: the text after its marker, up to the first blank line."""
    for marker in ("Problem: ", "The case:", "Here is one case of this task:"):
        if marker in prompt:
            part = prompt.split(marker)[-1].strip()
            return part.split("\n\n")[0]
    return prompt


PARAM_ORDER = {"eggs_per_day": 0, "eaten": 1, "baked": 2, "price": 3}


class FakeTeacher:
    """A scripted teacher: answers by prompt kind; records the purposes it saw."""

    def __init__(
        self,
        *,
        solution: str = GOOD_SOLUTION,
        critique: dict[str, Any] | str | None = None,
        rewrite: list[dict[str, Any] | str] | None = None,
        coldstart: list[dict[str, Any] | str] | None = None,
        repair: str = REPAIRED,
        budget_after: int | None = None,
        crash_on: str | None = None,
        whole: str = "```python\ndef run(question):\n    return {'answer': 0}\n```",
        parser: str = "no code",
    ) -> None:
        self.solution = solution
        self.whole = whole
        self.parser = parser
        self.critique = critique
        self.rewrite = list(rewrite or [])
        self.coldstart = list(coldstart or [])
        self.repair = repair
        self.budget_after = budget_after
        self.crash_on = crash_on
        self.seen: list[str] = []
        self.prompts: list[str] = []
        self.backend = FunctionBackend(
            self._reply, name="fake:teacher", capabilities=Capabilities(json_schema=True)
        )

    def _reply(self, req: ChatRequest) -> str | dict[str, Any]:
        text = user_text(req)
        if self.budget_after is not None and len(self.seen) >= self.budget_after:
            raise BudgetExceeded("teacher token budget of 100 exhausted")
        if "Write the instruction for a small language model" in text:
            kind = "coldstart"
        elif (
            "Solve this problem by writing" in text
            or "Solve ONE case of this task" in text
            or "Complete the Python function below so that it solves this one case" in text
        ):
            kind = "solve"
        elif "that computes the outputs of ANY case" in text:
            kind = "whole"
        elif "Design a program for ANY case" in text:
            kind = "design"
        elif "A reader copies the values named in FIELDS" in text:
            kind = "repair_design"
        elif "This Python function should solve ONE case" in text:
            kind = "repair_row"
        elif "It gives wrong results on these training cases" in text:
            kind = "repair_whole"
        elif "A program computes the outputs of this task from the parameters" in text:
            kind = "describe"
        elif "Read these values from a case" in text:
            kind = "extract"
        elif "that READS these values" in text:
            kind = "parser"
        elif "It gives wrong results on these cases" in text:
            kind = "repair"
        elif "Find the node at fault" in text:
            kind = "critique"
        elif "Improve the instruction" in text:
            kind = "rewrite"
        elif "Copy the quantities below" in text:
            kind = "extract"
        elif "the words and short phrases people write that signal" in text:
            kind = "cues"
        else:
            raise AssertionError(f"unexpected teacher prompt: {text[:200]}")
        self.seen.append(kind)
        self.prompts.append(text)
        if self.crash_on == kind:
            raise RuntimeError("simulated crash")
        if kind == "coldstart":
            return (
                self.coldstart.pop(0)
                if self.coldstart
                else {
                    "name": "duck eggs",
                    "system": "Solve the problem.",
                    "prompt": "Problem: {{ question }}\nGive the answer as JSON.",
                }
            )
        if kind == "solve":
            problem = case_text(text)
            a, b, c, d = [*numbers(problem), 0, 0, 0, 0][:4]
            return "```python\n" + self.solution.format(a=a, b=b, c=c, d=d) + "```"
        if kind == "whole":
            return self.whole
        if kind in ("repair_row", "repair_whole", "design", "repair_design"):
            return "no code"  # the sources' repairs fail here; tests/unit/test_sources_repair
        if kind == "cues":  # no cue listed: the cue source is tested in test_sources_cues
            return {label: [] for label in (req.json_schema or {}).get("properties", {})}
        if kind == "parser":
            return self.parser
        if kind == "describe":
            found = re.search(r"JSON object with the keys ([\w, ]+)", text)
            names = [n.strip() for n in found.group(1).split(",")] if found else []
            return {
                n: {"name": n, "description": f"the {n.replace('_', ' ')} in the problem"}
                for n in names
            }
        if kind == "repair":
            return self.repair
        if kind == "critique":
            if self.critique is not None:
                return self.critique
            node = re.search(r"one of ([\w, ]+)\.\n|one of ([\w, ]+),", text)
            ids = re.findall(r"^- (\w+) \(", text, flags=re.M)
            assert node is not None or ids
            return {
                "node_id": ids[0],
                "diagnosis": "the student cannot compute",
                "direction": "offload",
                "rationale": "arithmetic belongs in code",
            }
        if kind == "rewrite":
            if self.rewrite:
                return self.rewrite.pop(0)
            return {"system": "Be careful.", "prompt": "Think. {{ question }}"}
        return {}


def student_backend(
    solve: Callable[[str], Any] = lambda text: {"answer": 1},
    extract_error: Callable[[int], bool] = lambda i: False,
) -> FunctionBackend:
    """A fake student: the single solve node answers ``solve(question)``; an extraction
    node copies the numbers of the "Text:" line in schema order."""
    counter = {"n": 0}

    def reply(req: ChatRequest) -> dict[str, Any]:
        text = user_text(req)
        if "You copy values out of a text" in system_text(req):
            index = next(i for i, r in enumerate(ROWS) if r["question"] in text)
            props = dict((req.json_schema or {}).get("properties", {}))
            counter["n"] += 1
            shift = 1 if extract_error(counter["n"]) else 0
            return {n: VALUES[index][PARAM_ORDER[n]] + shift for n in props}
        if "copy numbers" in system_text(req):
            line = next(ln for ln in text.splitlines() if ln.startswith("Text:"))
            props = dict((req.json_schema or {}).get("properties", {}))
            counter["n"] += 1
            out = {}
            for name, sub in props.items():
                context = sub["description"].split('"')[1]
                pattern = re.escape(context).replace("___", r"(\d[\d,]*)")
                pattern = pattern.replace("N", r"\d[\d,]*")
                found = re.search(pattern, line)
                value = int(found.group(1).replace(",", "")) if found else 0
                out[name] = value + 1 if extract_error(counter["n"]) else value
            return out
        return dict(solve(text))

    return FunctionBackend(reply, name="fake:student", capabilities=Capabilities(json_schema=True))


# -- a two-step quantity task: read a quantity from the text, then double it -----------------

QTY_ROWS = [
    {"text": "The box holds 7 apples.", "answer": 14},
    {"text": "There are 12 pears in the crate.", "answer": 24},
    {"text": "Count: 30 plums.", "answer": 60},
]
DOUBLE_SOLUTION = "def solution():\n    quantity = {a}\n    return {{'answer': quantity * 2}}\n"


def quantity_plan(second: LlmNode | CodeNode) -> Plan:
    """The user's plan: an LLM node reads the quantity, ``second`` (id ``compute`` or
    ``double``, reading ``extract.quantity``) makes the answer."""
    extract = LlmNode(
        id="extract",
        inputs={"text": "input.text"},
        system="Read the quantity.",
        prompt="{{ text }}",
        output_schema={
            "type": "object",
            "properties": {"quantity": {"type": "integer"}},
            "required": ["quantity"],
        },
    )
    return Plan(
        name="double",
        inputs={"text": "string"},
        outputs={"answer": f"{second.id}.answer"},
        nodes=[extract, second],
    )
