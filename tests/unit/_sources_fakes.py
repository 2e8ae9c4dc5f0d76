"""Fakes for the candidate-source tests: a teacher scripted by prompt kind, and small tasks."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from sgde.optimize.teacher import Teacher
from sgde.runtime.backend import Capabilities, ChatRequest
from sgde.task import TaskSpec
from sgde.testing import FunctionBackend

MARKERS = {
    "Solve ONE case of this task": "solve",
    "Complete the Python function below so that it solves this one case": "solve_plan",
    "Read these values from a case": "extract",
    "For each parameter give:": "describe",
    "that READS these values": "parser",
    "It gives wrong results on these cases": "repair",
    "that computes the outputs of ANY case": "whole",
    "This Python function should solve ONE case": "repair_row",
    "It gives wrong results on these training cases": "repair_whole",
    "Design a program for ANY case": "design",
    "A reader copies the values named in FIELDS": "repair_design",
    "the words and short phrases people write that signal": "cues",
}


def prompt_kind(req: ChatRequest) -> str:
    text = "\n".join(m.content for m in req.messages if m.role == "user")
    for marker, kind in MARKERS.items():
        if marker in text:
            return kind
    raise AssertionError(f"unexpected teacher prompt: {text[:300]}")


def case_of(req: ChatRequest, marker: str = "The case:") -> dict[str, Any]:
    """The ``name: value`` lines after ``marker`` in the prompt (values are JSON)."""
    import json

    text = "\n".join(m.content for m in req.messages if m.role == "user")
    part = text.split(marker)[-1]
    out: dict[str, Any] = {}
    for line in part.strip().splitlines():
        m = re.match(r"^(\w+): (.*)$", line.strip())
        if m:
            try:
                out[m.group(1)] = json.loads(m.group(2))
            except ValueError:
                break
    return out


class ScriptedTeacher:
    """Answers each prompt kind with ``handlers[kind](request)``; records the kinds seen."""

    def __init__(self, handlers: dict[str, Callable[[ChatRequest], Any]]) -> None:
        self.handlers = handlers
        self.seen: list[str] = []
        self.backend = FunctionBackend(
            self._reply, name="fake:teacher", capabilities=Capabilities(json_schema=True)
        )
        self.teacher = Teacher(self.backend)

    def _reply(self, req: ChatRequest) -> Any:
        kind = prompt_kind(req)
        self.seen.append(kind)
        handler = self.handlers.get(kind)
        if handler is None and kind in ("design", "repair_design"):
            return "no code"  # the design source is tested in tests/unit/test_sources_design
        if handler is None and kind == "cues":
            return no_cues(req)  # the cue source is tested in tests/unit/test_sources_cues
        if handler is None:
            raise AssertionError(f"no handler for {kind}")
        return handler(req)


def no_cues(req: ChatRequest) -> dict[str, list[str]]:
    """An answer to a cue-list prompt that lists no cue for any label."""
    return {label: [] for label in (req.json_schema or {}).get("properties", {})}


def fenced(code: str) -> str:
    return "```python\n" + code + "\n```"


LETTER_TASK = TaskSpec(
    description="Count how many times a letter occurs in a word.",
    inputs={"question": "string"},
    outputs={"answer": "integer"},
)


def describer(
    names: dict[str, str] | None = None, text: str = "the {} of the task"
) -> Callable[[ChatRequest], Any]:
    """A describe handler: each param keeps its name (or ``names[param]``), described by
    ``text``."""

    def reply(req: ChatRequest) -> dict[str, Any]:
        props = (req.json_schema or {}).get("properties", {})
        return {k: {"name": (names or {}).get(k, k), "description": text.format(k)} for k in props}

    return reply
