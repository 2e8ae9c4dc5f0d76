"""JSONL I/O and the vendored GSM-Hard / GSM8K loaders."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from sgde.errors import DataError
from sgde.evaluation.gsm.datasets import (
    data_file,
    gsm8k_answer,
    load_gsm8k_test,
    load_gsm_hard,
)
from sgde.runtime.jsonl import read_jsonl, write_jsonl

SHA256 = {
    "gsm_hard.jsonl": "2032b0188a49ac0ec38cbe1e695e7d62d6dddc44bbb64f920728aca710e9ddef",
    "gsm8k_test.jsonl": "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14",
}


def test_read_jsonl_skips_blank_lines(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_text('{"a": 1}\n\n{"a": 2}\n', encoding="utf-8")
    assert read_jsonl(p) == [{"a": 1}, {"a": 2}]


def test_read_jsonl_bad_json_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_jsonl(p)
    assert info.value.line == 2
    assert f"{p}:2:" in str(info.value)


def test_read_jsonl_rejects_non_objects(tmp_path: Path) -> None:
    p = tmp_path / "list.jsonl"
    p.write_text('{"a": 1}\n{"a": 2}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"list.jsonl:3: expected a JSON object, got list"):
        read_jsonl(p)


def test_read_jsonl_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        read_jsonl(tmp_path / "nope.jsonl")


def test_write_jsonl_round_trip_is_deterministic_and_readable(tmp_path: Path) -> None:
    rows = [{"question": "Janet’s ducks", "answer": 18, "values": {"a": 1.5}}]
    p = tmp_path / "sub" / "out.jsonl"
    write_jsonl(p, rows)
    first = p.read_bytes()
    write_jsonl(p, rows)
    assert p.read_bytes() == first
    assert "Janet’s".encode() in first  # UTF-8, not \u escapes
    assert read_jsonl(p) == rows
    assert p.stat().st_mode & 0o777 == 0o644
    assert not [f for f in p.parent.iterdir() if f.name.endswith(".tmp")]


def test_write_jsonl_rejects_unserialisable_rows_without_touching_the_file(
    tmp_path: Path,
) -> None:
    p = tmp_path / "out.jsonl"
    write_jsonl(p, [{"a": 1}])
    with pytest.raises(DataError, match="row 2 is not JSON-serialisable"):
        write_jsonl(p, [{"a": 1}, {"a": {1, 2}}])
    assert read_jsonl(p) == [{"a": 1}]


@pytest.mark.parametrize("name", sorted(SHA256))
def test_vendored_files_are_unmodified(name: str) -> None:
    assert hashlib.sha256(data_file(name).read_bytes()).hexdigest() == SHA256[name]


def test_load_gsm_hard_validates_every_row() -> None:
    rows = load_gsm_hard()
    assert len(rows) == 1319
    assert [r.index for r in rows] == list(range(1319))
    assert rows[0].target == -9867630.0
    assert rows[0].docstring is not None
    assert "bakes muffins for her friends every day with four" in rows[0].docstring


def test_load_gsm_hard_reports_bad_row(tmp_path: Path) -> None:
    good = json.loads(data_file("gsm_hard.jsonl").read_text(encoding="utf-8").splitlines()[0])
    p = tmp_path / "h.jsonl"
    p.write_text(json.dumps(good) + "\n" + json.dumps({"input": "x", "code": "y"}) + "\n")
    with pytest.raises(DataError, match=r"h.jsonl:2: invalid GSM-Hard row: target"):
        load_gsm_hard(p)


def test_load_gsm8k_test_parses_final_answers() -> None:
    rows = load_gsm8k_test()
    assert len(rows) == 1319
    assert rows[0].final == 18.0
    assert gsm8k_answer("so 1,234 in all\n#### 1,234") == 1234.0
    assert gsm8k_answer("no marker") is None
