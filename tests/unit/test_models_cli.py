"""``sgde models list / prepare / cache`` through the CLI runner."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sgde.cli import models_cmd
from sgde.models.local import Chunk, LocalModel

app = typer.Typer()  # only this command group: the other groups are tested on their own
models_cmd.register(app)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("SGDE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("SGDE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("COLUMNS", "200")
    return CliRunner()


def test_list_json_has_every_local_model(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["models", "list", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    names = [row["name"] for row in data["local"]]
    assert names == [
        "local:smollm2-135m",
        "local:qwen2.5-coder-0.5b",
        "local:qwen2.5-coder-1.5b",
        "local:gemma3-270m",
    ]
    for row in data["local"]:
        assert row["assembled"] is False  # empty models dir
        assert row["path"].startswith(str(tmp_path / "models"))
        assert "pip install" in row["install"]
    assert "openai-compatible" in data["providers"]


def test_list_table(runner: CliRunner) -> None:
    result = runner.invoke(app, ["models", "list"])
    assert result.exit_code == 0, result.output
    assert "local:gemma3-270m" in result.output and "assembled" in result.output


def test_prepare_unknown_name_suggests(runner: CliRunner) -> None:
    result = runner.invoke(app, ["models", "prepare", "smollm2"])
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception)
    assert "local:smollm2-135m" in str(result.exception)


def test_prepare_assembles_once(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "blob.bin"
    data.write_bytes(b"GGUF" + b"x" * 100)
    model = LocalModel(
        name="tiny",
        title="Tiny",
        license="none",
        extra="tiny",
        filename="tiny.gguf",
        chunks=(Chunk("tiny-pkg", "1.0", "blob.bin"),),
        size=104,
        sha256=hashlib.sha256(data.read_bytes()).hexdigest(),
    )
    monkeypatch.setattr(models_cmd, "lookup_local_model", lambda name: model)

    def locate(chunk: Chunk) -> Path:
        return data

    import sgde.models.local.assemble as assemble

    monkeypatch.setattr(assemble, "locate_chunk", locate)
    monkeypatch.setattr(
        models_cmd, "ensure_assembled", lambda m, d: assemble.ensure_assembled(m, d, locate=locate)
    )
    monkeypatch.setattr(
        models_cmd, "model_status", lambda m, d: assemble.model_status(m, d, locate=locate)
    )
    result = runner.invoke(app, ["models", "prepare", "tiny"])
    assert result.exit_code == 0, result.output
    assert "assembling local:tiny" in result.output
    assert (tmp_path / "models" / "tiny.gguf").read_bytes() == data.read_bytes()
    again = runner.invoke(app, ["models", "prepare", "tiny"])
    assert again.exit_code == 0 and "assembling" not in again.output
    assert "verified" in again.output


def test_cache_show_and_clear(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["models", "cache"])
    assert result.exit_code == 0 and "0 cached responses" in result.output
    result = runner.invoke(app, ["models", "cache", "--clear"])
    assert result.exit_code == 0 and "removed 0" in result.output
