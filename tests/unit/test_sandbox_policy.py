"""Unit tests of the static sandbox policy (sgde.runtime.sandbox.policy): cases per rule."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from sgde.runtime.sandbox.policy import (
    ALLOWED_IMPORTS,
    RULES,
    PolicyViolation,
    check_source,
    module_valued_members,
)

GOOD = '''\
"""Docstring."""
import math
import collections.abc
from collections import namedtuple, Counter
from fractions import Fraction
import re

PATTERN = re.compile(r"\\d+")
THIRD = Fraction(1, 3)
NAMES = frozenset({"a", "b"})
TAU = 2 * math.pi
SQUARES = [i * i for i in range(5)]
Point = namedtuple("Point", "x y")


def helper(values):
    total = 0
    for v in values:
        total += v
    return total


def run(question, numbers=(), input=None):
    p = Point(1, 2)._replace(x=3)
    found = [int(m) for m in PATTERN.findall(question)]
    counts = Counter(found)
    try:
        ratio = found[0] / found[1]
    except (IndexError, ZeroDivisionError):
        ratio = None
    match found:
        case [a, *rest]:
            head = a
        case _:
            head = None
    gen = (x for x in found)
    label = "{:.2f} {} {name}".format(1.5, 2, name="x")
    return {
        "sum": helper(found),
        "point": p._asdict(),
        "ratio": ratio,
        "head": head,
        "first": next(gen, None),
        "common": counts.most_common(1),
        "label": f"{label!r:>10}",
        "kind": type(head).__name__ if False else str(type(head)),
        "abc": isinstance(found, collections.abc.Sequence),
        "input": input,
    }
'''


def rules(code: str, entry: str = "run") -> set[str]:
    return {v.rule for v in check_source(code, entry=entry)}


def test_good_code_flags_only_the_dunder() -> None:
    assert [(v.rule, v.line) for v in check_source(GOOD)] == [
        ("class-creation", 46),
        ("dunder-access", 46),
    ]


def test_good_code_without_dunder_passes() -> None:
    assert check_source(GOOD.replace("type(head).__name__ if False else ", "")) == []


def test_violation_is_frozen_and_formats() -> None:
    v = PolicyViolation("dunder-access", "msg", 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        v.rule = "x"  # type: ignore[misc]
    assert v.format() == "line 3: [dunder-access] msg"


def test_allowed_imports_are_the_documented_set() -> None:
    assert {
        "math", "fractions", "decimal", "statistics", "re", "datetime", "itertools",
        "functools", "collections", "json", "string",
    } == ALLOWED_IMPORTS  # fmt: skip


@pytest.mark.parametrize(
    ("code", "rule", "line"),
    [
        ("def run(:\n    pass", "syntax-error", 1),
        ("def run():\n    return 1\n\x00", "syntax-error", None),
        ("x = " + "(" * 300 + ")" * 300 + "\ndef run(): pass", "syntax-error", 1),
        ("def other():\n    return 1", "missing-entry", None),
        ("run = lambda: 1", "missing-entry", None),
        ("async def run():\n    return 1", "missing-entry", 1),
        ("import math\nprint(1)\ndef run(): pass", "top-level-statement", 2),
        ("def run(): pass\nfor i in range(3):\n    pass", "top-level-statement", 2),
        ("def f(): return 1\nX = f()\ndef run(): pass", "top-level-statement", 2),
        ("X = 1\nX += 1\ndef run(): pass", "top-level-statement", 2),
        ("D = {}\nD['a'] = 1\ndef run(): pass", "top-level-statement", 2),
        (
            "try:\n    import math\nexcept ImportError:\n    pass\ndef run(): pass",
            "top-level-statement",
            1,
        ),
        ("import os\ndef run(): pass", "import-not-allowed", 1),
        ("import json.tool\ndef run(): pass", "import-not-allowed", 1),
        ("from json import codecs\ndef run(): pass", "import-not-allowed", 1),
        ("from math import *\ndef run(): pass", "import-not-allowed", 1),
        ("from . import x\ndef run(): pass", "import-not-allowed", 1),
        ("def run():\n    import subprocess", "import-not-allowed", 2),
        ("def run():\n    return __import__('os')", "dunder-access", 2),
        ("def run():\n    return run.__globals__", "dunder-access", 2),
        ("def run(__x__):\n    return 1", "dunder-access", 1),
        ("def run():\n    return dict(__class__=1)", "dunder-access", 2),
        ("def run():\n    return '__class__'", "dunder-access", 2),
        ("from math import __name__ as n\ndef run(): pass", "dunder-access", 1),
        (
            "def run():\n    match 1:\n        case int(__class__=c):\n            return c",
            "dunder-access",
            3,
        ),
        ("import json\ndef run():\n    return json._default_encoder", "private-access", 3),
        ("from json import _default_decoder\ndef run(): pass", "private-access", 1),
        ("def run():\n    return eval('1')", "forbidden-name", 2),
        ("def run():\n    return open('/etc/passwd')", "forbidden-name", 2),
        ("def run(x):\n    return getattr(x, 'real')", "forbidden-name", 2),
        ("def run():\n    return vars()", "forbidden-name", 2),
        ("def run():\n    f = exec\n    return f", "forbidden-name", 2),
        ("def run(g):\n    return g.gi_frame", "forbidden-attribute", 2),
        ("def run(e):\n    return e.tb_frame.f_back.f_globals", "forbidden-attribute", 2),
        ("def run():\n    return type(1).mro()", "forbidden-attribute", 2),
        (
            "import functools\ndef run():\n    return functools.update_wrapper",
            "forbidden-attribute",
            3,
        ),
        ("from functools import singledispatch\ndef run(): pass", "forbidden-attribute", 1),
        ("import string\ndef run():\n    return string.Formatter()", "forbidden-attribute", 3),
        ("import statistics\ndef run():\n    return statistics.sys", "forbidden-attribute", 3),
        ("import decimal as d\ndef run():\n    return d.DefaultContext", "forbidden-attribute", 3),
        ("import json\ndef run():\n    json.dumps = None", "attribute-assignment", 3),
        ("def run(x):\n    del x.real", "attribute-assignment", 2),
        ("def run(x):\n    for x.y in []:\n        pass", "attribute-assignment", 2),
        ("class A:\n    pass\ndef run(): pass", "class-creation", 1),
        ("def run():\n    return type('A', (), {})", "class-creation", 2),
        ("def run():\n    return '{0.real}'.format(1)", "format-string", 2),
        ("def run(d):\n    return '{0[key]}'.format(d)", "format-string", 2),
        ("def run():\n    return '{:{0.real}}'.format(1)", "format-string", 2),
        ("def run(t):\n    return t.format(1)", "format-string", 2),
        ("def run(m):\n    return str.format_map('{a}', m)", "format-string", 2),
        ("def run():\n    return '{'.format()", "format-string", 2),
        ("def run():\n    async def f(): pass\n    return 1", "unsupported-syntax", 2),
    ],
)
def test_rule(code: str, rule: str, line: int | None) -> None:
    found = check_source(code)
    assert rule in {v.rule for v in found}, found
    assert rule in RULES
    assert any(v.rule == rule and v.line == line for v in found), found


def test_locally_bound_builtin_names_are_fine() -> None:
    code = "def run(input, type=None):\n    open = input\n    return open, type('a', 'b')"
    assert rules(code) == set()


def test_custom_entry() -> None:
    assert rules("def solution():\n    return 1", entry="solution") == set()
    assert rules("def solution():\n    return 1") == {"missing-entry"}


def test_violations_are_sorted_and_deduplicated() -> None:
    found = check_source("import os\ndef run():\n    return eval('1') + eval('2')\nimport sys")
    assert [v.line for v in found] == sorted(v.line or 0 for v in found)
    assert len({(v.rule, v.line, v.message) for v in found}) == len(found)


def test_oversized_source_is_refused_without_parsing() -> None:
    found = check_source("def run():\n    return 1\n" + "#" * 300_000)
    assert [v.rule for v in found] == ["syntax-error"]


def test_module_valued_members_lists_submodules() -> None:
    assert "sys" in module_valued_members("statistics")
    assert "codecs" in module_valued_members("json")
    assert "abc" not in module_valued_members("collections")


def test_issue_holes_are_refused_with_their_rules() -> None:
    cases = {
        "def run():\n    T = type(int)\n    return T('X', (), {})\n": "class-creation",
        "def run(x):\n    return isinstance(x, type)\n": "class-creation",
        "def run(x):\n    t = type(x)\n    return t\n": "class-creation",
        "def run(x):\n    match x:\n        case str(format=f):\n            pass": "match-pattern",
        "def run(x, C=None):\n    match x:\n        case C(v):\n            pass": "match-pattern",
        "def run(x):\n    match x:\n        case int(a, b):\n            return a": "match-pattern",
        "def run():\n    return '__cl' + 'ass__'\n": "dunder-access",
        "def deco(f):\n    return f\n@deco\ndef run():\n    return 1\n": "import-time-code",
        "def f():\n    return 1\ndef run(x=f()):\n    return x\n": "import-time-code",
        "def f():\n    return int\ndef run(x: f()):\n    return x\n": "import-time-code",
    }
    for code, rule in cases.items():
        assert rule in rules(code), (code, check_source(code))


def test_what_the_new_rules_still_allow() -> None:
    fine = [
        "def run(x):\n    return type(x) is int or type(x) in (float, str)\n",
        "def run(x):\n    return str(type(x))\n",
        "def run(x):\n    match x:\n        case int(n) | float(n):\n            return n\n"
        "        case [a, *rest]:\n            return a\n        case {'k': v}:\n"
        "            return v\n        case str():\n            return 0\n",
        "import functools\n@functools.lru_cache(maxsize=None)\ndef run(n=3, label='x'):\n"
        "    return n\n",
        "from functools import lru_cache\n@lru_cache\ndef run(n: int = 3) -> int:\n    return n\n",
        "def run(text):\n    return text.strip('_') + '_x_'\n",
    ]
    for code in fine:
        assert check_source(code) == [], (code, check_source(code))


def test_sgde_validate_reports_policy_refusals(tmp_path: Path) -> None:
    from plan_samples import DUCK_YAML
    from typer.testing import CliRunner

    from sgde.cli.app import app

    code = "import os\ndef run(eggs):\n    return {'answer': os.getpid()}\n"
    head, _, _ = DUCK_YAML.partition("  - id: compute\n")
    body = "".join(f"      {line}\n" for line in code.splitlines())
    plan = tmp_path / "plan.yaml"
    plan.write_text(head + f"  - id: compute\n    kind: code\n    inputs: {{eggs: "
                    f"extract_vote.eggs}}\n    code: |\n{body}")  # fmt: skip
    result = CliRunner().invoke(app, ["validate", str(plan)])
    assert result.exit_code == 1
    assert "the sandbox policy refuses this code [import-not-allowed]" in result.output
