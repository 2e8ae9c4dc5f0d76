"""Bench configuration files: validation errors name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sgde.errors import UsageError
from sgde.evaluation.bench import BenchConfig, load_bench_config

GOOD = """\
name: small
student: local:smollm2-135m
teacher: local:qwen2.5-coder-1.5b
templates: [gsmhard-0000, gsmhard-0001]
m: [3, 5]
methods: [direct, cot, pal, sgde]
seeds: [0, 1]
n_test: 10
budget: 50000
compile: {max_iters: 2, repeats: 1}
method_options:
  cot: {}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bench.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_config_loads(tmp_path: Path) -> None:
    config = load_bench_config(_write(tmp_path, GOOD))
    assert isinstance(config, BenchConfig)
    assert config.m == [3, 5] and config.compile.max_iters == 2 and config.budget == 50000


def test_repository_benchmark_config_is_valid() -> None:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "gsm_hard_targeted.yaml"
    config = load_bench_config(path)
    assert "sgde" in config.methods and set(config.m) == {3, 5}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (("n_test: 10", "n_test: 0"), "n_test"),
        (("compile: {max_iters: 2, repeats: 1}", "compile: {max_iters: -1}"), "compile.max_iters"),
        (("compile: {max_iters: 2, repeats: 1}", "compile: {max_iter: 2}"), "compile.max_iter"),
        (("m: [3, 5]", "m: [3, 3]"), "m"),
        (("m: [3, 5]", "m: [0]"), "m"),
        (("seeds: [0, 1]", "seeds: zero"), "seeds"),
        (("name: small", "name: small\ncolour: red"), "colour"),
        (("methods: [direct, cot, pal, sgde]", "methods: [direct, cto, sgde]"), "methods.1"),
        (("  cot: {}", "  opro: {}"), "method_options.opro"),
    ],
)
def test_invalid_field_is_named(tmp_path: Path, change: tuple[str, str], field: str) -> None:
    old, new = change
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(UsageError) as info:
        load_bench_config(path)
    assert f"{field}:" in str(info.value)
    assert str(path) in str(info.value)


def test_missing_required_fields_are_listed(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        load_bench_config(_write(tmp_path, "name: x\n"))
    assert "methods: missing required field" in str(info.value)
    with pytest.raises(UsageError) as info:
        load_bench_config(_write(tmp_path, "name: x\nmethods: [cot]\n"))
    assert "give at least one GSM-Hard template or task" in str(info.value)


def test_unreadable_and_non_mapping_files(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        load_bench_config(tmp_path / "missing.yaml")
    with pytest.raises(UsageError, match="mapping"):
        load_bench_config(_write(tmp_path, "- a\n- b\n"))
    with pytest.raises(UsageError, match="not valid YAML"):
        load_bench_config(_write(tmp_path, "name: [unclosed\n"))


def test_public_dict_drops_the_api_key() -> None:
    config = BenchConfig.model_validate(
        {
            "name": "x",
            "templates": ["t"],
            "methods": ["sgde"],
            "model_settings": {"api_key": "sk-secret"},
        }
    )
    assert "api_key" not in config.public_dict()["model_settings"]
    assert "sk-secret" not in str(config.public_dict())
