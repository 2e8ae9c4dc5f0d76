"""Package layers import one way: plan <- runtime <- models / task <- optimize/evaluation <- cli."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sgde

SRC = Path(sgde.__file__).parent

# For each layer, the sgde layers it may import (besides itself and sgde.errors / sgde top-level).
ALLOWED: dict[str, set[str]] = {
    "plan": set(),
    "runtime": {"plan"},
    "testing": {"plan", "runtime"},
    "models": {"plan", "runtime"},
    "task": {"plan", "runtime"},
    "optimize": {"plan", "runtime", "models", "task"},
    "evaluation": {"plan", "runtime", "models", "optimize", "task"},
    "serve": {"plan", "runtime", "models", "optimize", "evaluation", "task"},
    "cli": {"plan", "runtime", "models", "optimize", "evaluation", "testing", "task", "serve"},
}


def _sgde_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("sgde")]
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.level == 0
            and node.module.startswith("sgde")
        ):
            found.append((node.lineno, node.module))
    return found


def _layer_files() -> list[tuple[str, Path]]:
    return [(layer, p) for layer in ALLOWED for p in sorted((SRC / layer).rglob("*.py"))]


@pytest.mark.parametrize(("layer", "path"), _layer_files(), ids=lambda v: str(v))
def test_imports_go_one_way(layer: str, path: Path) -> None:
    bad = []
    for line, module in _sgde_imports(path):
        parts = module.split(".")
        if len(parts) < 2:
            # The top-level package imports every layer (its lazy public API): importing it
            # from inside a layer would make the one-way layering a cycle.
            bad.append(f"{path.relative_to(SRC)}:{line} imports the top-level package")
            continue
        if parts[1] in {"errors", "_version", "_optional"}:
            continue
        target = parts[1]
        if target != layer and target not in ALLOWED[layer]:
            bad.append(f"{path.relative_to(SRC)}:{line} imports {module}")
    assert not bad, f"layer '{layer}' may import only {sorted(ALLOWED[layer])}: {bad}"


def test_every_layer_is_checked() -> None:
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(ALLOWED), f"unchecked packages: {packages - set(ALLOWED)}"


def test_plan_does_no_io_or_model_imports() -> None:
    forbidden = {"llama_cpp", "openai", "anthropic", "subprocess", "socket", "httpx"}
    for path in (SRC / "plan").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module.split(".")[0]]
            assert not set(names) & forbidden, f"{path.name} imports {names}"
