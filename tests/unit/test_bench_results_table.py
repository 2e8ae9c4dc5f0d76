"""scripts/results_table.py renders the README table from results.json."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from _bench_fakes import fake_config, fake_deps

from sgde.evaluation.bench import run_bench_async

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "results_table.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("results_table", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def results_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import asyncio

    out = tmp_path_factory.mktemp("bench")
    asyncio.run(run_bench_async(fake_config(), out, deps=fake_deps()))
    return out / "results.json"


def test_table_names_models_m_items_seeds_and_date(results_path: Path) -> None:
    results = json.loads(results_path.read_text())
    block = _module().render_table(results)
    assert "student `fake:student`, teacher `fake:teacher`" in block
    assert "m ∈ {3, 5}" in block and "8 held-out test items" in block
    assert "seeds {0}" in block and results["created"][:10] in block
    rows = [line for line in block.splitlines() if line.startswith("| **sgde**")]
    assert len(rows) == 2 and "| 100.0 |" in rows[0]
    assert "McNemar" in block


def test_readme_block_is_replaced_between_markers(results_path: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- results-table -->\nold\n<!-- /results-table -->\ntail\n")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(results_path), "--readme", str(readme)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    text = readme.read_text()
    assert "old" not in text and text.endswith("<!-- /results-table -->\ntail\n")
    assert "| **sgde** | 3 | 100.0 |" in text


def test_missing_markers_and_bad_input_fail_cleanly(results_path: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers\n")
    module = _module()
    assert module.main([str(results_path), "--readme", str(readme)]) == 1
    assert readme.read_text() == "no markers\n"
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert module.main([str(bad)]) == 1
