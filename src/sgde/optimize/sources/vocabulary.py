"""A field the code only looks up in a closed set of words: read it by finding them.

A design's ``run`` often maps a word field through a table the task states: a destination
to a zone (``if destination.lower() in ["lyon", "lille", ...]``), a plan name to a fee
(``FEES[plan.lower()]``). The student must copy that word out of the text, and a small one
confuses it with another word of the same kind: "from Paris to a customer in Spain" gives
``destination = "Paris"``. The code knows better which words can matter: the string
literals the field is compared with or looked up by (its *vocabulary*, :func:`vocabulary`).

:func:`with_vocabulary` wraps ``run`` so that where exactly one vocabulary word occurs in
the case's text (whole words, any case; a word inside a longer one that also occurs does
not count), that word is the field's value; elsewhere (no vocabulary word, or several) the
student's copy stands. So a case whose value is outside the vocabulary (an "any other
country" branch) still goes by what the student copied, as before. The wrapped program is
verified on the training rows like any other, and kept only when it verifies.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from sgde.optimize.sources.code import wrap_run
from sgde.optimize.sources.verified import Program, verify_program
from sgde.runtime.calls import CodeRunner
from sgde.task import Metric, TaskSpec

__all__ = ["read_by_vocabulary", "vocabulary", "with_vocabulary"]

_MIN_WORDS = 2
_MAX_WORDS = 200


def _reads_field(node: ast.AST, name: str) -> bool:
    """Whether ``node`` is the field or a normalisation of it (``f``, ``f.strip().lower()``,
    ``str(f)``)."""
    while True:
        if isinstance(node, ast.Name):
            return node.id == name
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            node = node.func.value
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args:
            node = node.args[0]
        else:
            return False


def _strings(node: ast.AST, bound: dict[str, list[str]]) -> list[str]:
    """The string literals a container (or a name bound to one) holds: its items, its keys."""
    if isinstance(node, ast.Name):
        return bound.get(node.id, [])
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    items: list[ast.expr | None] = []
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items = list(node.elts)
    elif isinstance(node, ast.Dict):
        items = list(node.keys)
    return [i.value for i in items if isinstance(i, ast.Constant) and isinstance(i.value, str)]


def vocabulary(code: str, name: str) -> list[str]:
    """The string literals a parameter or variable ``name`` is compared with (``==``,
    ``in``) or looked up by (``table[name]``, ``table.get(name)``) anywhere in ``code``, in
    first-seen order; ``[]`` when fewer than two (too little to read by)."""
    try:
        fn = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return []
    bound: dict[str, list[str]] = {}
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                bound[target.id] = _strings(node.value, {})
    words: list[str] = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            left, right = node.left, node.comparators[0]
            if isinstance(node.ops[0], (ast.In, ast.NotIn, ast.Eq, ast.NotEq)):
                if _reads_field(left, name):
                    words += _strings(right, bound)
                elif _reads_field(right, name):
                    words += _strings(left, bound)
        elif isinstance(node, ast.Subscript) and _reads_field(node.slice, name):
            words += _strings(node.value, bound)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and node.args
            and _reads_field(node.args[0], name)
        ):
            words += _strings(node.func.value, bound)
    unique = list(dict.fromkeys(w for w in words if w.strip()))
    return unique if _MIN_WORDS <= len(unique) <= _MAX_WORDS else []


def with_vocabulary(
    code: str, params: Sequence[str], words: dict[str, list[str]], texts: Sequence[str]
) -> str:
    """``code`` (a program: ``def run(<params>)``) with ``run`` renamed and a new ``run``
    that also takes the free-text inputs ``texts`` and, for each field in ``words``, takes
    the one vocabulary word the texts hold in place of the copied value."""
    body: list[str] = []
    for field, vocab in words.items():
        body += [
            f"    sgde_hits = [w for w in {vocab!r}",
            "                 if sgde_re.search(r'(?<!\\w)' + sgde_re.escape(w) + r'(?!\\w)',",
            "                                   sgde_text, sgde_re.I)]",
            "    sgde_hits = [w for w in sgde_hits",
            "                 if not any(w != o and w.lower() in o.lower() for o in sgde_hits)]",
            "    if len({w.lower() for w in sgde_hits}) == 1:",
            f"        {field} = sgde_hits[0]",
        ]
    return wrap_run(
        code,
        inner="sgde_vocab_run",
        signature=params,
        call=params,
        texts=texts,
        body=body,
        head="import re as sgde_re\n",
    )


async def read_by_vocabulary(
    sandbox: CodeRunner,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    metric: Metric,
    program: Program,
    texts: Sequence[str],
) -> Program:
    """``program`` with each extracted text field that its code only looks up in a closed
    vocabulary read from the free-text inputs ``texts`` where they hold one of its words
    (:func:`with_vocabulary`), when that verifies on every training row; else ``program``.
    The texts become raw inputs of the program."""
    words = {
        f: vocab
        for f in program.extracted
        if program.params[f].kind == "string" and (vocab := vocabulary(program.code, f))
    }
    texts = [t for t in texts if t in task.inputs]
    if not words or not texts:
        return program
    code = with_vocabulary(program.code, list(program.params), words, texts)
    values = [
        None if v is None else {**v, **{t: row.get(t) for t in texts}}
        for v, row in zip(program.values, rows, strict=True)
    ]
    if any(await verify_program(sandbox, task, rows, metric, code, values)):
        return program
    return replace(
        program,
        code=code,
        params={**program.params, **{t: task.inputs[t] for t in texts}},
        values=values,
        raw_inputs={**program.raw_inputs, **{t: t for t in texts}},
    )
