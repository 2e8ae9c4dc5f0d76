"""Offloaded extraction: teacher-written parsing code for named parameters of a program.

The teacher sees ALL training rows at once with the values each must yield, and writes
``run(**task_inputs) -> {field: value}`` (regular expressions, date parsing). A parser is
verified in the sandbox on every training row against :attr:`Program.values`, and on
perturbed copies of the rows built safely: a value that occurs exactly once in a text input
is replaced there (a number by another number written the same way, a word or an ISO date
by another row's value of the same field), and the parser must follow the change — a
parser that hard-codes the training values fails. Which parser to use, if any, is the
compiler's decision (a parser verified on three phrasings may not survive a fourth).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sgde.optimize.events import CompileEvent, EventSink, emit
from sgde.optimize.sources.code import (
    clean_code,
    entry_params,
    program_source,
    run_harnessed,
)
from sgde.optimize.sources.context import row_inputs, task_context, value_text
from sgde.optimize.sources.verified import Program
from sgde.optimize.teacher import Teacher, render_prompt
from sgde.runtime.calls import CodeRunner
from sgde.task import TaskSpec

__all__ = ["Parser", "number_text", "parser_candidates", "perturbed_rows", "reads"]


@dataclass(frozen=True)
class Parser:
    """Parsing code verified on the training rows (and perturbed copies of them).

    Attributes:
        code: ``def run(**task_inputs) -> dict`` of the fields it reads.
        fields: The program parameters it reads.
        verified_rows: Training rows where every field was read right.
        searched: Teacher samples examined to find it.
        checked_perturbations: Perturbed rows it also read right.
    """

    code: str
    fields: list[str]
    verified_rows: int
    searched: int
    checked_perturbations: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "code": self.code,
            "fields": self.fields,
            "verified_rows": self.verified_rows,
            "searched": self.searched,
            "checked_perturbations": self.checked_perturbations,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Parser:
        """Read :meth:`to_dict`'s form."""
        return cls(
            str(data["code"]),
            [str(f) for f in data["fields"]],
            int(data.get("verified_rows", 0)),
            int(data.get("searched", 1)),
            int(data.get("checked_perturbations", 0)),
        )


def number_text(value: float, like: str) -> str:
    """``value`` written like the number text ``like`` (thousands commas, decimals)."""
    if isinstance(value, int) or float(value).is_integer():
        text = str(int(value))
        if "," in like:
            text = f"{int(value):,}"
        return text
    decimals = len(like.split(".")[1]) if "." in like else 2
    return f"{value:.{decimals}f}"


def perturbed_rows(
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    program: Program,
    fields: Sequence[str],
    *,
    repeated: bool = False,
    shift: int = 0,
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(inputs, expected field values)`` of safely perturbed training rows (see module).

    With ``repeated``, a value that occurs several times in a text input is perturbed too:
    every occurrence is replaced, and every field equal to it expects the replacement (two
    equal sides of a square both become the new number). That keeps the expected reads
    exact, though not which mention a field is, so it serves probes of an extraction
    (:mod:`sgde.optimize.harden`), never a reader's verification. ``shift`` picks another
    replacement (0: the one the readers are verified with; 1, 2...: others, for more probes).
    """
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for i, row in enumerate(rows):
        values = program.values[i] if i < len(program.values) else None
        if values is None:
            continue
        inputs = row_inputs(task, row)
        for f in fields:
            value = values.get(f)
            ftype = program.params.get(f)
            if ftype is None or value is None or isinstance(value, (list, bool)):
                continue
            replacement: Any = None
            if ftype.kind == "integer":
                replacement = value + 7 if shift == 0 else value * (shift + 1) + 3 * shift
            elif ftype.kind == "number":
                replacement = round(value * (1.5 + shift) + 1 + shift / 4, 2)
            else:
                others = [
                    v.get(f)
                    for v in program.values
                    if v is not None and v.get(f) not in (None, value)
                ]
                others = list(dict.fromkeys(others))
                replacement = others[shift % len(others)] if others else None
            if replacement is None:
                continue
            for name, text in inputs.items():
                if not isinstance(text, str):
                    continue
                if ftype.kind in ("integer", "number"):
                    pattern = re.compile(r"(?<![\d.,])" + _num_pattern(value) + r"(?![\d]|\.\d)")
                else:
                    pattern = re.compile(r"(?<!\w)" + re.escape(str(value)) + r"(?!\w)")
                hits = list(pattern.finditer(text))
                if not hits or (len(hits) > 1 and not repeated):
                    continue
                for hit in reversed(hits):
                    new = (
                        number_text(replacement, hit.group(0))
                        if ftype.kind in ("integer", "number")
                        else str(replacement)
                    )
                    text = text[: hit.start()] + new + text[hit.end() :]
                expected = {k: values[k] for k in fields}
                if len(hits) > 1:
                    expected = {
                        k: replacement if v == value and not isinstance(v, bool) else v
                        for k, v in expected.items()
                    }
                out.append(({**inputs, name: text}, {**expected, f: replacement}))
                break
    return out


def _num_pattern(value: float) -> str:
    if float(value).is_integer():
        n = int(value)
        return rf"(?:{n:,}|{n})" if abs(n) >= 1000 else str(n)
    return re.escape(repr(float(value)))


async def reads(
    sandbox: CodeRunner,
    code: str,
    inputs: Mapping[str, Any],
    expected: Mapping[str, Any],
    program: Program,
) -> bool:
    """Whether parser ``code`` run on ``inputs`` in the sandbox reads ``expected``."""
    run = await run_harnessed(sandbox, code, "run", dict(inputs), trace=False)
    if not run.ok or not isinstance(run.result, dict):
        return False
    return all(program.params[f].correct(run.result.get(f), v) for f, v in expected.items())


async def parser_candidates(
    teacher: Teacher,
    sandbox: CodeRunner,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    program: Program,
    fields: Sequence[str],
    *,
    samples: int = 2,
    seed: int = 0,
    temperature: float = 0.7,
    events: EventSink | None = None,
) -> list[Parser]:
    """Teacher-written parsers of ``fields`` verified on every training row (best first).

    Returns ``[]`` when no sample verifies (the events say why).
    """
    fields = [f for f in fields if f in program.params]
    names = list(task.inputs)
    known = [(i, v) for i, v in enumerate(program.values) if v is not None and i < len(rows)]
    if not fields or not known:
        return []
    prompt = render_prompt(
        "parser.j2",
        fields=[
            {
                "name": f,
                "describe": program.params[f].describe(),
                "description": program.descriptions.get(f, ""),
            }
            for f in fields
        ],
        cases=[
            {
                "inputs": value_text(row_inputs(task, rows[i]), 400),
                "values": value_text({f: v.get(f) for f in fields}),
            }
            for i, v in known
        ],
        params=names,
        **task_context(task),
    )
    extra = perturbed_rows(task, rows, program, fields)
    found: list[Parser] = []
    seen: set[str] = set()
    for k in range(samples):
        code = clean_code(
            await teacher.code(
                prompt,
                purpose="parser",
                temperature=0.0 if k == 0 else temperature,
                seed=seed + 3571 * k,
            )
        )
        params = entry_params(code, "run")
        why = ""
        wrapped = program_source(code, "run", params or [], list(fields))
        if params is None or sorted(params) != sorted(names) or wrapped is None:
            why = f"run() must take ({', '.join(names)})"
        elif wrapped in seen:
            why = "same code as an earlier sample"
        else:
            code = wrapped
            seen.add(code)
            ok = 0
            for i, v in known:
                ok += await reads(
                    sandbox, code, row_inputs(task, rows[i]), {f: v[f] for f in fields}, program
                )
            if ok < len(known):
                why = f"read {ok}/{len(known)} training rows right"
            else:
                checked = 0
                for inputs, expected in extra:
                    if not await reads(sandbox, code, inputs, expected, program):
                        why = f"fails on a perturbed row ({value_text(expected, 80)})"
                        break
                    checked += 1
                if not why:
                    found.append(Parser(code, list(fields), ok, k + 1, checked))
        emit(
            events,
            CompileEvent(
                "supervision",
                teacher.iteration,
                f"parser sample {k + 1} for {', '.join(fields)}: {why or 'verified'}",
                teacher_tokens=teacher.usage.total_tokens,
                data={"source": "parser", "fields": list(fields)},
            ),
        )
    return found
