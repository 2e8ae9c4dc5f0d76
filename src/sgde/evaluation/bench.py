"""``sgde bench``: a grid of tasks × m × methods × seeds, checkpointed per cell.

For every (task, seed) the bench builds a training pool (the first m rows train a cell) and
a held-out test set from disjoint seeds: GSM-Hard templates are synthesised (adversarial
values), task families generated, datasets read (:mod:`sgde.evaluation.bench_items`); typed
tasks are answered and scored by their :class:`~sgde.task.TaskSpec`;
every method of every m is evaluated on the *same* test items, so methods can be compared
pairwise (McNemar). A cell = (template, m, seed, method):

1. prepare the method on the m training rows — SGDe compiles a plan with the teacher,
   prompt optimisers spend teacher calls, plain baselines only build their prompt — with its
   own metered model view (the per-cell token ``budget`` covers teacher and student);
2. evaluate it on the test rows (in process, or over Ray with ``--engine ray``);
3. write ``cells/<cell>.json`` atomically. A rerun skips cells whose file exists with the
   same configuration fingerprint.

At the end ``results.json``, ``report.md`` and a self-contained ``report.html`` are written.
Methods that do not use the training rows (direct, CoT, self-consistency, PAL, PoT) are run
once per (template, seed) and their result is shared by every m.
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from sgde._version import __version__
from sgde.errors import SgdeError
from sgde.evaluation import bench_items
from sgde.evaluation.baselines.base import Method
from sgde.evaluation.bench_config import (
    BenchConfig,
    check_config,
    load_bench_config,
)
from sgde.evaluation.bench_grid import (
    TRAIN_FREE_METHODS,
    Cell,
    data_seed,
    file_safe,
    fingerprint,
    grid,
)
from sgde.evaluation.bench_items import ResolvedTask, generate_rows, resolve_item
from sgde.evaluation.engines import (
    Engine,
    EngineName,
    InProcessEngine,
    WorkerSpec,
    check_engine_name,
    make_engine,
)
from sgde.evaluation.evaluate import STUDENT_ROLE, EvalResult, ItemResult, summarise
from sgde.evaluation.gsm.synth import synthesise_async
from sgde.evaluation.gsm.templates import Template, get_template
from sgde.evaluation.report import compare_paired, render_report, summarise_cells
from sgde.evaluation.report.render import ReportPaths
from sgde.evaluation.sgde_method import (
    SGDE_METHOD,
    CompileFn,
    SgdeMethod,
    compile_summary,
    resolve_method,
)
from sgde.models import DEFAULT_STUDENT, DEFAULT_TEACHER, ModelHub, ModelSettings
from sgde.optimize import compile_async
from sgde.optimize.events import CompileEvent
from sgde.plan import plan_hash, to_mermaid
from sgde.planfile import dump_plan
from sgde.planfile.files import write_text_atomic
from sgde.runtime.jsonl import read_jsonl, write_jsonl
from sgde.runtime.sandbox import SandboxPool
from sgde.runtime.sync import run_sync

__all__ = [
    "DEFAULT_STUDENT",
    "DEFAULT_TEACHER",
    "TRAIN_FREE_METHODS",
    "BenchConfig",
    "BenchDeps",
    "BenchObserver",
    "BenchOutcome",
    "Cell",
    "data_seed",
    "grid",
    "load_bench_config",
    "run_bench",
    "run_bench_async",
]

CELL_SCHEMA_VERSION = 1
RESULTS_SCHEMA_VERSION = 1


class BenchObserver:
    """Receives progress (the CLI draws it with rich). Every method does nothing here:
    subclass and override what you need; an instance ignores everything."""

    def phase(self, message: str) -> None:
        """A free-text status line."""

    def cell_started(self, cell: Cell, index: int, total: int) -> None:
        """A cell starts (``index`` is 0-based)."""

    def cell_skipped(self, cell: Cell, result: Mapping[str, Any], reason: str) -> None:
        """A cell was not run (checkpoint, shared result or unavailable method)."""

    def evaluation_started(self, cell: Cell, n_items: int) -> None:
        """Test items of a cell start."""

    def item_done(self, cell: Cell, item: ItemResult) -> None:
        """One test item finished."""

    def compile_event(self, cell: Cell, event: CompileEvent) -> None:
        """A compiler progress event of an SGDe cell."""

    def cell_finished(self, cell: Cell, result: Mapping[str, Any]) -> None:
        """A cell finished (result as written)."""


SynthesiseFn = Callable[..., "list[dict[str, Any]] | Awaitable[list[dict[str, Any]]]"]


def _default_hub(settings: ModelSettings) -> ModelHub:
    return ModelHub(settings)


def _default_sandbox() -> AbstractAsyncContextManager[SandboxPool]:
    return SandboxPool(workers=1)


@dataclass
class BenchDeps:
    """What the bench needs from the rest of sgde; tests inject fakes.

    Attributes:
        get_template: Template id -> template.
        synthesise: ``synthesise(template, n=, seed=, sandbox=, split=, exclude=)``
            (sync or async; default :func:`sgde.evaluation.gsm.synth.synthesise_async`).
        make_hub: Settings -> a fresh :class:`~sgde.models.ModelHub` (tests pass a resolver).
        make_sandbox: A fresh sandbox pool (async context manager).
        compile_fn: The compiler (:func:`sgde.optimize.compile_async`).
        resolve: ``(name, options, sgde_factory) -> Method``.
    """

    get_template: Callable[[str], Template] = get_template
    synthesise: SynthesiseFn = synthesise_async
    make_hub: Callable[[ModelSettings], ModelHub] = _default_hub
    make_sandbox: Callable[[], AbstractAsyncContextManager[SandboxPool]] = _default_sandbox
    compile_fn: CompileFn = compile_async
    resolve: Callable[..., Method] = field(default=resolve_method)


@dataclass
class BenchOutcome:
    """What a bench run produced."""

    results: dict[str, Any]
    results_path: Path
    report: ReportPaths
    ran: int
    skipped: int


def _not_run(evaluation: EvalResult) -> str | None:
    """Why a cell whose test items could not all run is an error, not an accuracy."""
    if not evaluation.n_errors:
        return None
    kinds = ", ".join(f"{kind} {n}" for kind, n in evaluation.error_kinds.items())
    first = (evaluation.errors[0].error or "").splitlines()[0] if evaluation.errors else ""
    return (
        f"{evaluation.n_errors} of {evaluation.n} test items could not run ({kinds}): "
        f"{first}; rerun with --retry-errors"
    )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _uses_trainset(method: Method) -> bool:
    flag = getattr(method, "uses_trainset", None)
    if isinstance(flag, bool):
        return flag
    return method.name not in TRAIN_FREE_METHODS


TASK_FIELDS = ("id", "question", "answer")
"""What methods see of a synthesised row; provenance (values, seed, template) stays in the
data files, so no method (or compiler cold start) mistakes it for an input."""


def _task_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in TASK_FIELDS if k in row}


def _strip_traces(cell: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(cell)
    if out.get("eval"):
        ev = dict(out["eval"])
        ev["items"] = [{k: v for k, v in i.items() if k != "trace"} for i in ev["items"]]
        out["eval"] = ev
    return out


class _BenchRun:
    """State of one bench run (one hub, one sandbox, one engine)."""

    def __init__(
        self,
        config: BenchConfig,
        out_dir: Path,
        *,
        deps: BenchDeps,
        observer: BenchObserver,
        hub: ModelHub,
        sandbox: SandboxPool,
        engine: EngineName,
        ray_address: str | None,
        retry_errors: bool,
    ) -> None:
        self.config = config
        self.out = out_dir
        self.deps = deps
        self.observer = observer
        self.hub = hub
        self.sandbox = sandbox
        self.retry_errors = retry_errors
        self.data: dict[tuple[str, int], tuple[list[dict[str, Any]], list[dict[str, Any]]]] = {}
        self.typed: dict[str, ResolvedTask] = {}
        self.shared: dict[tuple[str, int, str], dict[str, Any]] = {}
        self.eval_bindings = hub.bind({STUDENT_ROLE: config.student})
        self.inprocess = InProcessEngine(
            self.eval_bindings, sandbox=sandbox, concurrency=config.concurrency
        )
        self.engine: Engine = self.inprocess
        if check_engine_name(engine) == "ray":
            spec = WorkerSpec(
                models={STUDENT_ROLE: config.student},
                model_settings=config.model_settings.model_dump(mode="json"),
                concurrency=config.concurrency,
            )
            self.engine = make_engine(
                engine, bindings=None, sandbox=None, spec=spec, ray_address=ray_address
            )

    # -- data -------------------------------------------------------------------------------
    async def _synth(
        self, template: Template, n: int, seed: int, split: str, exclude: Sequence[str]
    ) -> list[dict[str, Any]]:
        rows = self.deps.synthesise(
            template, n=n, seed=seed, sandbox=self.sandbox, split=split, exclude=exclude
        )
        if inspect.isawaitable(rows):
            rows = await rows
        return [dict(r) for r in rows]

    async def data_for(
        self, template_id: str, seed: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The (training pool, test set) of a template and seed, synthesised once and cached
        in ``data/``, reduced to :data:`TASK_FIELDS`. Test questions never appear in the
        training pool."""
        key = (template_id, seed)
        if key in self.data:
            return self.data[key]
        stem = file_safe(f"{template_id}__s{seed}")
        train_path = self.out / "data" / f"{stem}__train.jsonl"
        test_path = self.out / "data" / f"{stem}__test.jsonl"
        resolved = self.resolved(template_id)
        if resolved is not None:
            item = self.config.task_item(template_id)
            assert item is not None
            self.observer.phase(f"preparing data for {template_id} (seed {seed})")
            train, test = generate_rows(self.config, item, seed, max(self.config.m))
            write_jsonl(test_path, test)
            write_jsonl(train_path, train)
            typed_rows = (
                bench_items.task_rows(resolved.spec, train, where=str(train_path)),
                bench_items.task_rows(resolved.spec, test, where=str(test_path)),
            )
            self.data[key] = typed_rows
            return typed_rows
        if train_path.exists() and test_path.exists():
            train, test = read_jsonl(train_path), read_jsonl(test_path)
        else:
            self.observer.phase(f"synthesising data for {template_id} (seed {seed})")
            template = self.deps.get_template(template_id)
            test = await self._synth(
                template, self.config.n_test, data_seed(seed, "test", template_id), "test", ()
            )
            train = await self._synth(
                template,
                max(self.config.m),
                data_seed(seed, "train", template_id),
                "train",
                [str(r["question"]) for r in test],
            )
            for prefix, rows in (("train", train), ("test", test)):
                for i, row in enumerate(rows):
                    row.setdefault("id", f"{template_id}-s{seed}-{prefix}-{i}")
            write_jsonl(test_path, test)
            write_jsonl(train_path, train)
        task_rows = ([_task_row(r) for r in train], [_task_row(r) for r in test])
        self.data[key] = task_rows
        return task_rows

    def resolved(self, item_id: str) -> ResolvedTask | None:
        """The typed task ``item_id`` (resolved once), or None for a GSM-Hard template."""
        item = self.config.task_item(item_id)
        if item is None:
            return None
        if item_id not in self.typed:
            self.typed[item_id] = resolve_item(self.config, item)
        return self.typed[item_id]

    # -- cells ------------------------------------------------------------------------------
    def cell_path(self, cell: Cell) -> Path:
        return self.out / "cells" / f"{cell.id}.json"

    def _finished(self, cell: Cell) -> dict[str, Any] | None:
        existing = _read_json(self.cell_path(cell))
        if existing is None or existing.get("fingerprint") != fingerprint(self.config, cell):
            return None
        if existing.get("status") != "ok" and self.retry_errors:
            return None
        return existing

    def _save(self, cell: Cell, result: dict[str, Any]) -> None:
        text = json.dumps(result, indent=1, default=str) + "\n"
        write_text_atomic(self.cell_path(cell), text, what="bench cell", make_parents=True)

    def _method(self, cell: Cell) -> Method:
        def sgde_factory() -> SgdeMethod:
            return SgdeMethod(
                task=self.config.task,
                settings=self.config.compile,
                checkpoint_dir=self.out / "compile" / cell.id,
                events=lambda event: self.observer.compile_event(cell, event),
                compile_fn=self.deps.compile_fn,
            )

        resolved = self.resolved(cell.template)
        if resolved is None:
            return self.deps.resolve(
                cell.method, self.config.method_options.get(cell.method), sgde=sgde_factory
            )
        return self.deps.resolve(
            cell.method,
            self.config.method_options.get(cell.method),
            sgde=sgde_factory,
            task=resolved.spec,
            plan=resolved.plan,
        )

    async def run_cell(self, cell: Cell) -> dict[str, Any]:
        base: dict[str, Any] = {
            "schema_version": CELL_SCHEMA_VERSION,
            "cell": cell.to_dict(),
            "fingerprint": fingerprint(self.config, cell),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        try:
            method = self._method(cell)
            reason = method.unavailable_reason()
            if reason:
                return {**base, "status": "unavailable", "error": reason}
            train, test = await self.data_for(cell.template, cell.seed)
            prepare = await self._prepare(cell, method, train[: cell.m])
            prepared = prepare.pop("_prepared")
            self.observer.evaluation_started(cell, len(test))
            started = time.perf_counter()
            engine = self.engine if prepared.state is None else self.inprocess
            items = await engine.run_method(
                method,
                prepared,
                test,
                method_options=self.config.method_options.get(cell.method),
                seed=cell.seed,
                keep_trace=self.config.keep_traces,
                on_item=lambda item: self.observer.item_done(cell, item),
            )
            evaluation = summarise(items, name=cell.method, extra={"engine": engine.name})
            return {
                **base,
                "status": "error" if evaluation.n_errors else "ok",
                "error": _not_run(evaluation),
                "prepare": prepare,
                "eval": evaluation.to_dict(traces=self.config.keep_traces),
                "eval_seconds": round(time.perf_counter() - started, 3),
            }
        except SgdeError as exc:
            return {**base, "status": "error", "error": f"{type(exc).__name__}: {exc}"}

    async def _prepare(
        self, cell: Cell, method: Method, train: Sequence[Mapping[str, Any]]
    ) -> dict[str, Any]:
        settings = self.config.model_settings.model_copy(
            update={"budget_tokens": self.config.budget}
        )
        cell_hub = ModelHub(settings, cache=self.hub.cache)
        roles: dict[str, Any] = {STUDENT_ROLE: self.hub.get(self.config.student)}
        if method.uses_teacher:
            roles["teacher"] = self.hub.get(self.config.teacher)
        bound = cell_hub.bind(roles)
        started = time.perf_counter()
        prepared = await method.prepare(
            train,
            teacher=bound.get("teacher"),
            student=bound[STUDENT_ROLE],
            sandbox=self.sandbox,
            budget=self.config.budget,
            seed=cell.seed,
        )
        # Per role: spent tokens plus the calls answered from the request cache and what they
        # had cost when first made (``replayed_tokens``), so a replayed compile's cost shows.
        usage: dict[str, dict[str, Any]] = {
            role: entry.to_dict() for role, entry in cell_hub.meter.details().items()
        }
        # Methods that call the models themselves (the peers, through their own servers)
        # report their usage in ``prepared.usage``; the hub then saw no calls of that role.
        for role, spent in prepared.usage.items():
            if role not in usage or not (usage[role]["calls"] or usage[role]["cached_calls"]):
                usage[role] = spent.to_dict()
        info: dict[str, Any] = {
            "seconds": round(time.perf_counter() - started, 3),
            "teacher_usage": usage.get("teacher"),
            "student_usage": usage.get(STUDENT_ROLE),
            "report": prepared.report,
            "plan": dump_plan(prepared.plan) if prepared.plan is not None else None,
            "plan_hash": plan_hash(prepared.plan) if prepared.plan is not None else None,
            "mermaid": to_mermaid(prepared.plan) if prepared.plan is not None else None,
            "iterations": None,
            "converged": None,
            "loss_history": [],
            "notes": [],
            "_prepared": prepared,
        }
        if cell.method == SGDE_METHOD:
            info.update(compile_summary(prepared.report))
        return info

    async def cell_result(self, cell: Cell, index: int, total: int) -> tuple[dict[str, Any], bool]:
        """The cell's result and whether it was computed now."""
        done = self._finished(cell)
        if done is not None:
            self.observer.cell_skipped(cell, done, "finished in an earlier run")
            return done, False
        method_probe = self.config.method_options.get(cell.method)
        share_key = (cell.template, cell.seed, cell.method)
        if cell.method != SGDE_METHOD and share_key in self.shared:
            source = self.shared[share_key]
            result = {**source, "cell": cell.to_dict(), "shared_from": source["cell"]["id"]}
            result["fingerprint"] = fingerprint(self.config, cell)
            self._save(cell, result)
            self.observer.cell_skipped(cell, result, f"same as {source['cell']['id']}")
            return result, False
        self.observer.cell_started(cell, index, total)
        result = await self.run_cell(cell)
        self._save(cell, result)
        self.observer.cell_finished(cell, result)
        if result.get("status") == "ok" and cell.method != SGDE_METHOD:
            method = self.deps.resolve(cell.method, method_probe)
            if not _uses_trainset(method):
                self.shared[share_key] = result
        return result, True

    def remember(self, cell: Cell, result: dict[str, Any]) -> None:
        """Let a checkpointed train-free result serve the other m values."""
        if result.get("status") == "ok" and cell.method != SGDE_METHOD:
            method = self.deps.resolve(cell.method, self.config.method_options.get(cell.method))
            if not _uses_trainset(method):
                self.shared.setdefault((cell.template, cell.seed, cell.method), result)


def build_results(config: BenchConfig, cells: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``results.json`` document from the cell results (traces stripped)."""
    stripped = [_strip_traces(c) for c in cells]
    return {
        "schema_version": RESULTS_SCHEMA_VERSION,
        "name": config.name,
        "description": config.description,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "sgde_version": __version__,
        "models": {"student": config.student, "teacher": config.teacher},
        "config": config.public_dict(),
        "cells": stripped,
        "summary": summarise_cells(stripped),
        "comparisons": compare_paired(stripped),
    }


async def run_bench_async(
    config: BenchConfig,
    out_dir: str | Path,
    *,
    deps: BenchDeps | None = None,
    engine: EngineName = "inprocess",
    ray_address: str | None = None,
    observer: BenchObserver | None = None,
    retry_errors: bool = False,
) -> BenchOutcome:
    """Run (or resume) a bench grid and write results and reports into ``out_dir``.

    Args:
        config: The validated configuration.
        out_dir: Output directory (``cells/``, ``data/``, ``compile/``, ``results.json``,
            ``report.md``, ``report.html``, ``figures/``).
        deps: Injected dependencies (defaults: the real ones).
        engine: ``"inprocess"`` or ``"ray"`` (test items spread over a Ray cluster).
        ray_address: Ray cluster address (``None``: ``$RAY_ADDRESS`` or a local Ray).
        observer: Progress listener.
        retry_errors: Rerun cells that ended with an error instead of keeping them.

    Returns:
        The results and the paths written.

    Raises:
        UsageError: an unknown method, method option or template (checked before any model
            is loaded).
    """
    deps = deps or BenchDeps()
    check_config(config, find_template=deps.get_template)
    observer = observer or BenchObserver()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cells = grid(config)
    results: list[dict[str, Any]] = []
    ran = 0
    hub = deps.make_hub(config.model_settings)
    async with hub, deps.make_sandbox() as sandbox:
        run = _BenchRun(
            config,
            out,
            deps=deps,
            observer=observer,
            hub=hub,
            sandbox=sandbox,
            engine=engine,
            ray_address=ray_address,
            retry_errors=retry_errors,
        )
        for index, cell in enumerate(cells):
            result, computed = await run.cell_result(cell, index, len(cells))
            if not computed:
                run.remember(cell, result)
            ran += int(computed)
            results.append(result)
    observer.phase("writing results.json and the report")
    document = build_results(config, results)
    results_path = out / "results.json"
    text = json.dumps(document, indent=1, default=str) + "\n"
    write_text_atomic(results_path, text, what="bench results", make_parents=True)
    report = render_report(document, out)
    return BenchOutcome(
        results=document,
        results_path=results_path,
        report=report,
        ran=ran,
        skipped=len(cells) - ran,
    )


def run_bench(
    config: BenchConfig,
    out_dir: str | Path,
    *,
    deps: BenchDeps | None = None,
    engine: EngineName = "inprocess",
    ray_address: str | None = None,
    observer: BenchObserver | None = None,
    retry_errors: bool = False,
) -> BenchOutcome:
    """Synchronous :func:`run_bench_async` (not from a running event loop)."""
    return run_sync(
        run_bench_async(
            config,
            out_dir,
            deps=deps,
            engine=engine,
            ray_address=ray_address,
            observer=observer,
            retry_errors=retry_errors,
        ),
        name="run_bench",
        use_instead="run_bench_async(...)",
    )
