"""Package layers import one way: plan <- planfile <- runtime <- models / task <-
optimize/evaluation <- cli; and plan/ is pure data."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import sgde

SRC = Path(sgde.__file__).parent

# For each layer, the sgde layers it may import (besides itself and sgde.errors / sgde top-level).
ALLOWED: dict[str, set[str]] = {
    "plan": set(),
    "planfile": {"plan"},
    "runtime": {"plan", "planfile"},
    "testing": {"plan", "planfile", "runtime"},
    "models": {"plan", "planfile", "runtime"},
    "task": {"plan", "planfile", "runtime"},
    "optimize": {"plan", "planfile", "runtime", "models", "task"},
    "evaluation": {"plan", "planfile", "runtime", "models", "optimize", "task"},
    "serve": {"plan", "planfile", "runtime", "models", "optimize", "evaluation", "task"},
    "cli": {
        "plan",
        "planfile",
        "runtime",
        "models",
        "optimize",
        "evaluation",
        "testing",
        "task",
        "serve",
    },
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


# plan/ is pure data: the standard library, pydantic and the error module, nothing else.
# (Plan files, YAML, jinja2 and jsonschema live one layer up, in planfile/.)
PLAN_MAY_IMPORT = set(sys.stdlib_module_names) | {"pydantic", "sgde"}
PLAN_SGDE_MODULES = ("sgde.plan", "sgde.errors")


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """Every absolute module an ``import`` / ``from … import`` names, anywhere in the file."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def _plan_impurities(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    bad = []
    for line, module in _imported_modules(tree):
        top = module.split(".")[0]
        if top not in PLAN_MAY_IMPORT or (
            top == "sgde"
            and not any(module == m or module.startswith(m + ".") for m in PLAN_SGDE_MODULES)
        ):
            bad.append(f"{path.name}:{line} imports {module}")
    for node in ast.walk(tree):
        # A relative import or an import by name would slip past the check above.
        if isinstance(node, ast.ImportFrom) and node.level:
            bad.append(f"{path.name}:{node.lineno} uses a relative import")
        if isinstance(node, ast.Call) and (
            (isinstance(node.func, ast.Name) and node.func.id == "__import__")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
        ):
            bad.append(f"{path.name}:{node.lineno} imports a module by name")
    return bad


@pytest.mark.parametrize("path", sorted((SRC / "plan").rglob("*.py")), ids=lambda p: p.name)
def test_plan_is_pure_data(path: Path) -> None:
    bad = _plan_impurities(path)
    assert not bad, (
        f"plan/ may import only the standard library, pydantic and sgde.errors: {bad}; "
        "move file I/O and library-backed checks to sgde.planfile"
    )


@pytest.mark.parametrize(
    ("source", "verdict"),
    [
        ("import yaml", ["probe.py:1 imports yaml"]),
        ("from jinja2 import meta", ["probe.py:1 imports jinja2"]),
        (
            "from sgde.planfile.files import read_user_text",
            ["probe.py:1 imports sgde.planfile.files"],
        ),
        ("def f():\n    import jsonschema", ["probe.py:2 imports jsonschema"]),
        ("from . import model", ["probe.py:1 uses a relative import"]),
        (
            "import importlib\nimportlib.import_module('yaml')",
            ["probe.py:2 imports a module by name"],
        ),
        ("import json, re\nfrom pydantic import BaseModel\nfrom sgde.errors import PlanError", []),
        ("from sgde.plan.model import Plan", []),
    ],
)
def test_the_purity_check_catches_what_it_should(
    tmp_path: Path, source: str, verdict: list[str]
) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(source + "\n", encoding="utf-8")
    assert _plan_impurities(probe) == verdict
