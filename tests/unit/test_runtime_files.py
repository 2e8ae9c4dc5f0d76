"""Shared file helpers: atomic writes, the one JSONL reader/writer, sync wrappers."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest

from sgde.errors import DataError, UsageError
from sgde.evaluation.bench import run_bench
from sgde.evaluation.evaluate import evaluate_plan
from sgde.evaluation.gsm.datasets import load_gsm8k_test, load_gsm_hard
from sgde.planfile.files import write_text_atomic
from sgde.runtime.jsonl import iter_jsonl, read_jsonl, write_jsonl
from sgde.runtime.sandbox import run_code_sync
from sgde.runtime.sync import run_sync
from sgde.runtime.trace import RunTrace, read_traces, write_traces


def test_write_text_atomic_creates_replaces_and_keeps_mode(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    write_text_atomic(path, "one\n")
    assert path.read_text(encoding="utf-8") == "one\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask()
    os.chmod(path, 0o600)
    write_text_atomic(path, "two\r\n")
    assert path.read_bytes() == b"two\r\n"  # written as given, no newline translation
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_write_text_atomic_errors_are_usage_errors(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "a.txt"
    with pytest.raises(UsageError, match=r"cannot write report .*missing"):
        write_text_atomic(target, "x", what="report")
    write_text_atomic(target, "x", make_parents=True)
    assert target.read_text(encoding="utf-8") == "x"


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def test_iter_jsonl_gives_real_line_numbers_and_stops_early(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('\ufeff{"a": 1}\n\n  \n{"a": 2}\n{broken\n', encoding="utf-8")
    rows = iter_jsonl(path)
    assert next(rows) == (1, {"a": 1})
    assert next(rows) == (4, {"a": 2})
    with pytest.raises(DataError, match=r"rows.jsonl:5: invalid JSON") as info:
        next(rows)
    assert info.value.line == 5 and info.value.hint


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'"text"\n', "expected a JSON object, got string"),
        (b"null\n", "expected a JSON object, got null"),
        (b"3\n", "expected a JSON object, got number"),
        (b'{"a": 1}\n\xff\n', "not UTF-8 text"),
    ],
)
def test_read_jsonl_refuses_non_objects_and_non_text(
    tmp_path: Path, raw: bytes, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(raw)
    with pytest.raises(DataError, match=message):
        read_jsonl(path, what="dataset")


def test_read_jsonl_names_what_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cannot read trace file: file not found"):
        read_jsonl(tmp_path / "nope.jsonl", what="trace file")
    with pytest.raises(DataError, match="it is a directory"):
        read_jsonl(tmp_path)


def test_write_jsonl_refuses_nan(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="row 1 is not JSON-serialisable"):
        write_jsonl(tmp_path / "x.jsonl", [{"a": float("nan")}])
    assert not (tmp_path / "x.jsonl").exists()


def test_write_traces_into_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    trace = RunTrace(run_id="r", plan_name="p", plan_hash="sha256:0", seed=0)
    with pytest.raises(UsageError, match="cannot write trace file"):
        write_traces(tmp_path / "missing" / "t.jsonl", [trace])
    with pytest.raises(UsageError, match="cannot append to trace file"):
        write_traces(tmp_path / "missing" / "t.jsonl", [trace], append=True)
    write_traces(tmp_path / "t.jsonl", [trace])
    assert [t.run_id for t in read_traces(tmp_path / "t.jsonl")] == ["r"]


def test_dataset_loaders_report_file_lines_past_blank_lines(tmp_path: Path) -> None:
    hard = tmp_path / "hard.jsonl"
    code = 'def solution():\n    """Q"""\n    return 1'
    good = json.dumps({"input": "q", "code": code, "target": 1})
    hard.write_text(f"{good}\n\n{good}\n\n" + '{"input": "q", "code": "x", "target": "a"}\n')
    with pytest.raises(DataError, match=r"hard.jsonl:5: invalid GSM-Hard row: target"):
        load_gsm_hard(hard)
    hard.write_text(f"{good}\n\n{good}\n")
    assert [row.index for row in load_gsm_hard(hard)] == [0, 1]
    gsm8k = tmp_path / "gsm8k.jsonl"
    gsm8k.write_text('\n{"question": "q", "answer": "no final"}\n')
    with pytest.raises(DataError, match=r"gsm8k.jsonl:2: answer has no numeric final answer"):
        load_gsm8k_test(gsm8k)


async def test_sync_wrappers_refuse_a_running_loop_and_name_the_async_variant() -> None:
    async def nothing() -> int:
        return 1

    with pytest.raises(UsageError, match=r"thing\(\) cannot run inside a running event loop"):
        run_sync(nothing(), name="thing", use_instead="thing_async()")
    with pytest.raises(UsageError, match="run_code_sync"):
        run_code_sync("def run():\n    return 1\n")
    with pytest.raises(UsageError, match="run_bench_async"):
        run_bench(None, "unused")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="evaluate_plan_async"):
        evaluate_plan(None, [], {}, sandbox=None)  # type: ignore[arg-type]


def test_run_sync_runs_outside_a_loop() -> None:
    async def two() -> int:
        await asyncio.sleep(0)
        return 2

    assert run_sync(two(), name="two", use_instead="two()") == 2
