"""Hostile plan and data files: refused fast, with one error naming the file (and line).

A billion-laughs plan, a FIFO, ``/dev/zero``, deep nesting and huge numbers must neither hang
sgde nor exhaust its memory nor end in a traceback.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from sgde.errors import DataError, PlanError, UsageError
from sgde.evaluation.bench_config import load_bench_config
from sgde.models.usage import load_prices_file
from sgde.planfile import load_plan, loads_plan
from sgde.planfile.files import PLAN_MAX_BYTES, read_user_bytes, write_text_atomic
from sgde.planfile.sourcemap import MAX_YAML_NODES, compose_yaml, describe_yaml_error
from sgde.runtime.jsonl import MAX_DEPTH, read_jsonl

# 9 levels of 9 aliases: ~3.9e8 values once expanded, 699 bytes on disk.
LAUGHS = (
    "schema_version: 1\nname: lol\n"
    + 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "description: padding so the file is exactly the reported 699 bytes long"
)
LAUGHS = LAUGHS + " " * (699 - len(LAUGHS) - 1) + "\n"


def _in_thread(fn: Callable[[], Any], timeout: float = 10.0) -> BaseException | None:
    """Run ``fn`` in a daemon thread; fail the test if it does not return in ``timeout``."""
    box: list[BaseException | None] = []

    def target() -> None:
        try:
            fn()
        except BaseException as exc:
            box.append(exc)
        else:
            box.append(None)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"still running after {timeout} s (blocked?)"
    return box[0]


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    return path


# -- plans -----------------------------------------------------------------------------------
def test_billion_laughs_plan_is_refused_fast_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(LAUGHS, encoding="utf-8")
    assert path.stat().st_size == 699
    started = time.perf_counter()
    with pytest.raises(PlanError) as info:
        load_plan(path)
    elapsed = time.perf_counter() - started
    assert elapsed < 5.0, f"took {elapsed:.1f} s"  # unbounded: > 60 s and gigabytes
    (problem,) = info.value.problems
    assert f"past {MAX_YAML_NODES:,} values" in problem.message
    assert problem.line is not None and 3 <= problem.line <= 11
    assert str(info.value).count("\n") <= 3


def test_moderate_aliases_still_work() -> None:
    text = "a: &x {k: [1, 2, 3]}\nb: *x\nc: {<<: *x, j: 4}\n"
    composed = compose_yaml(text)
    assert composed is not None
    assert composed[0] == {
        "a": {"k": [1, 2, 3]},
        "b": {"k": [1, 2, 3]},
        "c": {"k": [1, 2, 3], "j": 4},
    }


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        ("a: &a [1, *a]\n", "recursive alias *a", 1),
        ("name: x\nx: " + "[" * 5000 + "]" * 5000 + "\n", "nested more than 100 levels", 2),
        ("name: x\nx: " + "9" * 5000 + "\n", "cannot read the value int: Exceeds the limit", 2),
    ],
)
def test_hostile_yaml_is_a_plan_error_with_its_line(text: str, message: str, line: int) -> None:
    with pytest.raises(PlanError) as info:
        loads_plan(text, source="p.yaml")
    (problem,) = info.value.problems
    assert message in problem.message and problem.line == line


def test_values_python_cannot_build_are_yaml_errors_with_their_line() -> None:
    with pytest.raises(yaml.YAMLError) as info:
        compose_yaml("name: x\nwhen: 2024-13-45\n")  # a date that does not exist
    assert describe_yaml_error(info.value) == (
        "invalid YAML: cannot read the value timestamp: month must be in 1..12",
        2,
    )


def test_fifo_plan_is_refused_without_blocking(fifo: Path) -> None:
    error = _in_thread(lambda: load_plan(fifo))
    assert isinstance(error, UsageError)
    assert f"{fifo}: cannot read plan file: it is a FIFO" in str(error)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero on this platform")
def test_dev_zero_plan_is_refused_without_reading() -> None:
    error = _in_thread(lambda: load_plan("/dev/zero"), timeout=5.0)
    assert isinstance(error, UsageError) and "character device" in str(error)


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    with path.open("wb") as fh:  # sparse: no disk space used
        fh.truncate(PLAN_MAX_BYTES + 1)
    with pytest.raises(DataError, match="over the 4 MiB limit"):
        load_plan(path)
    assert read_user_bytes(path, max_bytes=PLAN_MAX_BYTES + 1)[:1] == b"\0"


def test_bench_config_and_price_file_use_the_same_guards(tmp_path: Path, fifo: Path) -> None:
    error = _in_thread(lambda: load_bench_config(fifo))
    assert isinstance(error, UsageError) and "cannot read bench config: it is a FIFO" in str(error)
    error = _in_thread(lambda: load_prices_file(fifo))
    assert isinstance(error, UsageError) and "cannot read price file" in str(error)
    prices = tmp_path / "prices.yaml"
    prices.write_text(LAUGHS.replace("schema_version: 1\nname: lol\n", ""), encoding="utf-8")
    with pytest.raises(UsageError, match=r"prices\.yaml:\d+: price file: invalid YAML: aliases"):
        load_prices_file(prices)
    bench = tmp_path / "bench.yaml"
    bench.write_text(LAUGHS, encoding="utf-8")
    with pytest.raises(UsageError, match="aliases expand the document"):
        load_bench_config(bench)


# -- JSONL data --------------------------------------------------------------------------------
def test_fifo_and_dev_zero_datasets_are_refused_without_blocking(fifo: Path) -> None:
    error = _in_thread(lambda: read_jsonl(fifo, what="dataset"))
    assert isinstance(error, DataError) and "cannot read dataset: it is a FIFO" in str(error)
    if Path("/dev/zero").exists():
        error = _in_thread(lambda: read_jsonl("/dev/zero", what="dataset"), timeout=5.0)
        assert isinstance(error, DataError) and "character device" in str(error)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"a": ' + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "}", "nested too deeply"),
        ('{"a": ' + "7" * 10_000 + "}", r"invalid JSON value \(Exceeds the limit"),
    ],
)
def test_deep_or_huge_rows_name_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n' + row + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message) as info:
        read_jsonl(path, what="dataset")
    assert info.value.line == 2 and str(info.value).startswith(f"{path}:2: ")


def test_nesting_up_to_the_limit_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    depth = MAX_DEPTH - 1  # the row object itself is one level
    path.write_text('{"a": ' + "[" * depth + "]" * depth + "}\n", encoding="utf-8")
    assert len(read_jsonl(path)) == 1


def test_data_size_limit_is_overridable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": "' + "x" * 2_000_000 + '"}\n', encoding="utf-8")
    monkeypatch.setenv("SGDE_MAX_DATA_MB", "1")
    with pytest.raises(DataError, match="over the 1 MiB limit") as info:
        read_jsonl(path, what="dataset")
    assert "SGDE_MAX_DATA_MB" in str(info.value)
    monkeypatch.setenv("SGDE_MAX_DATA_MB", "3")
    assert len(read_jsonl(path)) == 1
    monkeypatch.setenv("SGDE_MAX_DATA_MB", "lots")
    with pytest.raises(UsageError, match="SGDE_MAX_DATA_MB"):
        read_jsonl(path)


# -- writing -----------------------------------------------------------------------------------
def test_atomic_write_never_replaces_a_device_or_fifo(fifo: Path) -> None:
    with pytest.raises(UsageError, match="it is a FIFO"):
        write_text_atomic(fifo, "x", what="plan file")
    assert fifo.exists() and not fifo.is_file()
    if Path("/dev/full").exists():
        with pytest.raises(UsageError, match="cannot write report /dev/full: it is a character"):
            write_text_atomic("/dev/full", "x", what="report")


def _one_node_plan(node: str) -> str:
    return (
        "schema_version: 1\nname: deep\ninputs: {x: number}\noutputs: {y: c.text}\nnodes:\n" + node
    )


@pytest.mark.parametrize(
    ("node", "field"),
    [
        (
            "  - id: c\n    kind: llm\n    inputs: {x: input.x}\n"
            '    prompt: "{{ ' + "(" * 400 + "x" + ")" * 400 + ' }}"\n',
            "prompt",
        ),
        (
            "  - id: c\n    kind: code\n    inputs: {x: input.x}\n    code: |\n"
            "      def run(x):\n          return {'text': " + "+".join(["1"] * 50_000) + "}\n",
            "code",
        ),
    ],
    ids=["prompt", "code"],
)
def test_deeply_nested_prompts_and_code_are_plan_problems(node: str, field: str) -> None:
    with pytest.raises(PlanError) as info:
        loads_plan(_one_node_plan(node), source="p.yaml")
    problems = [p for p in info.value.problems if p.field == field]
    assert len(problems) == 1 and "nested too deeply" in problems[0].message
    assert problems[0].line is not None
