"""``sgde eval``, ``sgde bench`` and ``sgde demo``: evaluation from the command line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    TaskID,
)
from rich.table import Table

from sgde.cli.common import (
    EXIT_INCOMPLETE,
    ApiKeyOpt,
    JsonOpt,
    PricesOpt,
    check_output_dir,
    check_output_file,
    check_prices_file,
    check_resumable,
    err_console,
    item_progress,
    out_console,
    parse_assignments,
    report_incomplete,
)
from sgde.cli.output import dumps_json
from sgde.cli.run_cmd import read_dataset
from sgde.evaluation.bench import (
    BenchObserver,
    BenchOutcome,
    Cell,
    load_bench_config,
    run_bench_async,
)
from sgde.evaluation.demo import (
    DEFAULT_TEMPLATE,
    DemoOptions,
    check_demo,
    comparison_rows,
    run_demo_async,
)
from sgde.evaluation.engines import (
    EngineName,
    WorkerSpec,
    check_engine_name,
    make_engine,
)
from sgde.evaluation.evaluate import EvalResult, ItemResult
from sgde.evaluation.report.aggregate import teacher_tokens_used
from sgde.evaluation.report.formatting import format_p_value
from sgde.evaluation.results_log import ResultsLog, default_results_path, evaluate_to_log
from sgde.models import DEFAULT_STUDENT, DEFAULT_TEACHER, ModelHub, ModelSettings
from sgde.models.plan_models import plan_model_targets
from sgde.optimize.events import CompileEvent
from sgde.plan import CodeNode, plan_hash
from sgde.planfile import load_plan
from sgde.runtime.sandbox import SandboxPool
from sgde.runtime.trace import RunTrace, write_traces

__all__ = ["RichBenchObserver", "bench", "demo", "eval_plan", "register"]


def register(app: typer.Typer) -> None:
    """Add ``sgde eval``, ``sgde bench`` and ``sgde demo`` to the app."""
    app.command("eval")(eval_plan)
    app.command("bench")(bench)
    app.command("demo")(demo)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


# -- progress -------------------------------------------------------------------------------
class RichBenchObserver(BenchObserver):
    """Draws bench/demo progress: a bar over cells, a bar over the current cell's items,
    and one line per finished cell and per compile milestone."""

    _COMPILE_KINDS = frozenset(
        {"start", "coldstart", "supervision", "forward", "accepted", "rejected", "no_edit", "stop"}
    )

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = item_progress(console=console, transient=False)
        self._cells: TaskID | None = None
        self._items: TaskID | None = None

    def __enter__(self) -> RichBenchObserver:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _cells_task(self, total: int) -> TaskID:
        if self._cells is None:
            self._cells = self.progress.add_task("cells", total=total)
        return self._cells

    def phase(self, message: str) -> None:
        """Print a status line."""
        self.progress.console.print(f"[dim]·[/] {escape(message)}", highlight=False)

    def cell_started(self, cell: Cell, index: int, total: int) -> None:
        """Announce a cell."""
        task = self._cells_task(total)
        self.progress.update(task, completed=index)
        what = "compiling with the teacher" if cell.method == "sgde" else "preparing"
        self.progress.console.print(
            f"[bold]{escape(cell.method)}[/] (template {escape(cell.template)}, m={cell.m}, "
            f"seed {cell.seed}): {what}",
            highlight=False,
        )

    def cell_skipped(self, cell: Cell, result: Mapping[str, Any], reason: str) -> None:
        """Report a skipped cell."""
        if self._cells is not None:
            self.progress.advance(self._cells)
        self.progress.console.print(
            f"[dim]{escape(cell.id)}: skipped ({escape(reason)})[/]", highlight=False
        )

    def evaluation_started(self, cell: Cell, n_items: int) -> None:
        """Start the items bar."""
        if self._items is not None:
            self.progress.remove_task(self._items)
        self._items = self.progress.add_task(f"  {cell.method} test items", total=n_items)

    def item_done(self, cell: Cell, item: ItemResult) -> None:
        """Advance the items bar."""
        if self._items is not None:
            self.progress.advance(self._items)

    def compile_event(self, cell: Cell, event: CompileEvent) -> None:
        """Print compile milestones."""
        if event.kind not in self._COMPILE_KINDS:
            return
        loss = f" loss {event.loss:.2f}" if event.loss is not None else ""
        self.progress.console.print(
            f"  [cyan]sgde[/] it {event.iteration} {event.kind}{loss}: {escape(event.message)} "
            f"[dim](teacher {event.teacher_tokens:,} tok)[/]",
            highlight=False,
        )

    def cell_finished(self, cell: Cell, result: Mapping[str, Any]) -> None:
        """Print the cell's accuracy."""
        if self._items is not None:
            self.progress.remove_task(self._items)
            self._items = None
        if self._cells is not None:
            self.progress.advance(self._cells)
        if result.get("status") == "ok":
            ev = result["eval"]
            self.progress.console.print(
                f"  → {escape(cell.method)}: {ev['n_correct']}/{ev['n']} correct "
                f"({_pct(ev['accuracy'])})",
                highlight=False,
            )
        else:
            self.progress.console.print(
                f"  → {escape(cell.method)}: [red]{escape(str(result.get('status')))}[/] "
                f"{escape(str(result.get('error') or ''))}",
                highlight=False,
            )


# -- sgde eval ------------------------------------------------------------------------------
def _eval_table(result: EvalResult) -> Table:
    table = Table(title=f"{escape(result.name)} — {result.n} items", title_justify="left")
    columns = ["accuracy", "95 % interval", "correct", "could not run"]
    columns += ["student tokens / item", "latency median", "latency p95"]
    if not result.n_errors:
        columns.remove("could not run")
    for col in columns:
        table.add_column(col, justify="right")
    kinds = ", ".join(f"{kind} {n}" for kind, n in result.error_kinds.items())
    cells = {
        "accuracy": _pct(result.accuracy) if result.n_ran else "–",
        "95 % interval": f"{_pct(result.ci_low)} – {_pct(result.ci_high)}",
        "correct": f"{result.n_correct}/{result.n_ran}",
        "could not run": f"{result.n_errors} ({kinds})",
        "student tokens / item": _num(result.tokens_mean),
        "latency median": f"{result.latency_median_s:.2f} s",
        "latency p95": f"{result.latency_p95_s:.2f} s",
    }
    table.add_row(*(cells[c] for c in columns))
    return table


def _print_failures(result: EvalResult, trace_path: Path | None, *, limit: int = 20) -> None:
    _print_errors(result)
    failures = [item for item in result.failures if item.ran]
    if not failures:
        return
    traced = [item for item in result.items if item.trace is not None]
    line_of = {item.id: i + 1 for i, item in enumerate(traced)}
    out_console.print(f"\n[bold]Failures[/] ({len(failures)}):", highlight=False)
    for item in failures[:limit]:
        what = (
            escape(item.error)
            if item.error
            else (f"predicted {escape(repr(item.prediction))}, expected {escape(repr(item.gold))}")
        )
        where = (
            f"  [dim](trace: {escape(str(trace_path))} line {line_of[item.id]})[/]"
            if (trace_path is not None and item.id in line_of)
            else ""
        )
        out_console.print(f"  {escape(item.id)}: {what}{where}", highlight=False)
    if len(failures) > limit:
        out_console.print(f"  … and {len(failures) - limit} more", highlight=False)
    if trace_path is None:
        out_console.print("  [dim]pass --trace FILE to keep every run's trace[/]", highlight=False)


def _print_errors(result: EvalResult, *, limit: int = 10) -> None:
    """Rows that could not run: one block per kind with the ids and the first error."""
    errors = result.errors
    if not errors:
        return
    out_console.print(
        f"\n[bold yellow]Could not run[/] ({len(errors)}, not counted in the accuracy):",
        highlight=False,
    )
    for kind in result.error_kinds:
        items = [item for item in errors if item.error_kind == kind]
        ids = ", ".join(item.id for item in items[:limit])
        more = f" and {len(items) - limit} more" if len(items) > limit else ""
        out_console.print(f"  {escape(kind)}: rows {escape(ids)}{more}", highlight=False)
        out_console.print(f"    {escape(items[0].error or '')}", highlight=False)


async def _run_eval(
    plan_path: Path,
    dataset: Path,
    targets: dict[str, str],
    *,
    trace_path: Path | None,
    seed: int,
    concurrency: int,
    engine_name: EngineName,
    ray_address: str | None,
    base_url: str | None,
    limit: int | None,
    quiet: bool,
    api_key: str | None = None,
    prices: Path | None = None,
    results_path: Path | None = None,
    resume: bool = False,
) -> EvalResult:
    plan = load_plan(plan_path)
    rows = read_dataset(dataset, plan, limit=limit)
    choice = plan_model_targets(plan, targets)
    for note in choice.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(note)}", highlight=False)
    targets = choice.names()
    settings = ModelSettings(base_url=base_url, api_key=api_key, prices_file=prices)
    keep = "all" if trace_path is not None else "failures"
    spec = WorkerSpec(
        models=targets, model_settings=settings.model_dump(mode="json"), concurrency=concurrency
    )
    async with AsyncExitStack() as stack:
        log = None
        if results_path is not None:
            header: dict[str, Any] = {"command": "eval", "plan": plan.name, "seed": seed}
            header.update(plan_hash=plan_hash(plan), models=targets, dataset=str(dataset))
            log = stack.enter_context(ResultsLog(results_path, header, resume=resume))
        bindings = None
        sandbox = None
        if engine_name == "inprocess":
            hub = await stack.enter_async_context(ModelHub(settings))
            bindings = hub.bind(targets)
            if any(isinstance(n, CodeNode) for n in plan.nodes):
                sandbox = await stack.enter_async_context(SandboxPool())
        engine = make_engine(
            engine_name,
            bindings=bindings,
            sandbox=sandbox,
            spec=spec,
            concurrency=concurrency,
            ray_address=ray_address,
        )
        progress = item_progress("evaluating", disable=quiet, transient=True)
        with progress:
            resumed = len(log.finished(rows)) if log is not None else 0
            if resumed and not quiet:
                err_console.print(
                    f"resuming: {resumed} of {len(rows)} rows already done "
                    f"({escape(str(results_path))})",
                    highlight=False,
                )
            task = progress.add_task("items", total=len(rows), completed=resumed)
            result = await evaluate_to_log(
                plan,
                rows,
                engine,
                log=log,
                seed=seed,
                keep_trace=keep,
                on_item=lambda _item: progress.advance(task),
                source=str(dataset),
            )
    if trace_path is not None:
        write_traces(
            trace_path, [RunTrace.from_dict(i.trace) for i in result.items if i.trace is not None]
        )
    return result


def eval_plan(
    plan: Annotated[
        Path, typer.Argument(metavar="PLAN", help="Plan YAML file.", show_default=False)
    ],
    dataset: Annotated[
        Path, typer.Option("--dataset", "-d", help="JSONL rows: plan inputs + gold outputs.")
    ],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            metavar="ROLE=URI",
            help="Bind a model role, e.g. student=local:smollm2-135m (repeat per role).",
        ),
    ] = None,
    trace: Annotated[
        Path | None, typer.Option("--trace", help="Write every run's trace here (JSONL).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    seed: Annotated[int, typer.Option(help="Run seed.")] = 0,
    concurrency: Annotated[int, typer.Option(help="Items in flight at once.", min=1)] = 1,
    engine: Annotated[str, typer.Option(help="inprocess or ray.")] = "inprocess",
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster address (default: local Ray).")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="Base URL of an OpenAI-compatible endpoint.")
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="Evaluate only the first N rows.", min=1)
    ] = None,
    api_key: ApiKeyOpt = None,
    prices: PricesOpt = None,
    results: Annotated[
        Path | None,
        typer.Option(
            "--results",
            metavar="FILE",
            help="Append each row's result here as it finishes (JSONL; default with --trace: "
            "TRACE.results.jsonl next to it).",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Keep the rows already in the results file and run only the rest (rows that "
            "could not run are run again).",
        ),
    ] = False,
) -> None:
    """Evaluate a plan on a labelled dataset: accuracy (Wilson 95 %), tokens, latency, failures.

    Exits 3 when some rows could not run (a model endpoint, the sandbox or the budget
    failed): the finished rows are in the results file and --resume runs the rest.
    """
    engine_name = check_engine_name(engine)
    check_output_file(trace, option="--trace", inputs=[plan, dataset])
    results_path = results or default_results_path(trace)
    check_resumable(results_path, resume=resume, inputs=[plan, dataset, trace])
    check_prices_file(prices)
    targets = parse_assignments(model, option="--model")
    result = asyncio.run(
        _run_eval(
            plan,
            dataset,
            targets,
            trace_path=trace,
            seed=seed,
            concurrency=concurrency,
            engine_name=engine_name,
            ray_address=ray_address,
            base_url=base_url,
            limit=limit,
            quiet=as_json,
            api_key=api_key,
            prices=prices,
            results_path=results_path,
            resume=resume,
        )
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(traces="none"), indent=1, default=str))
    else:
        out_console.print(_eval_table(result))
        _print_failures(result, trace)
    if result.n_errors:
        report_incomplete(result.n_errors, result.n, result.error_kinds, results_path)
        raise typer.Exit(EXIT_INCOMPLETE)


# -- sgde bench / demo ----------------------------------------------------------------------
def _teacher_tokens(row: Mapping[str, Any]) -> str:
    """Teacher tokens used to prepare (spent + replayed from the request cache)."""
    tokens = teacher_tokens_used(row)
    if tokens is None:
        return "–"
    used, replayed = tokens
    return f"{_num(used, 0)} ({_num(replayed, 0)} cached)" if replayed else _num(used, 0)


def _summary_table(rows: Sequence[Mapping[str, Any]], title: str, *, per_m: bool = True) -> Table:
    """Summary rows (``results.json``) as a table; ``per_m`` adds the m and iterations."""
    columns = ["method", "m", "accuracy", "95 % interval", "items", "student tok/query"]
    columns += ["latency median", "teacher tokens", "iterations"]
    if not per_m:
        columns = [c for c in columns if c not in ("m", "iterations")]
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in rows:
        interval = (
            f"{_pct(r['ci_low'])} – {_pct(r['ci_high'])}" if r["accuracy"] is not None else "–"
        )
        latency = r["latency_median_s"]
        cells = {
            "method": r["method"],
            "m": str(r["m"]),
            "accuracy": _pct(r["accuracy"]),
            "95 % interval": interval,
            "items": str(r["n_items"]),
            "student tok/query": _num(r["tokens_per_query"]),
            "latency median": f"{latency:.2f} s" if latency is not None else "–",
            "teacher tokens": _teacher_tokens(r),
            "iterations": _num(r["iterations_mean"]),
        }
        style = "bold" if r["method"] == "sgde" else None
        table.add_row(*(cells[c] for c in columns), style=style)
    return table


def _print_outcome(outcome: BenchOutcome, title: str) -> None:
    results = outcome.results
    out_console.print(_summary_table(results["summary"], title))
    for c in results["comparisons"]:
        out_console.print(
            f"  sgde vs {escape(c['baseline'])} (m={c['m']}, {c['n_pairs']} paired items): "
            f"Δ {100 * c['delta']:+.1f} points, McNemar p = {format_p_value(c['p_value'])}",
            highlight=False,
        )
    for cell in results["cells"]:
        if cell.get("status") != "ok":
            out_console.print(
                f"  [yellow]{escape(cell['cell']['id'])}[/]: {escape(str(cell.get('status')))} "
                f"{escape(str(cell.get('error') or ''))}",
                highlight=False,
            )
    out_console.print(f"\nresults: {escape(str(outcome.results_path))}", highlight=False)
    out_console.print(f"report:  [bold]{escape(str(outcome.report.html))}[/]", highlight=False)


def _outcome_json(outcome: BenchOutcome) -> str:
    results = outcome.results
    return dumps_json(
        {
            "results": str(outcome.results_path),
            "report": str(outcome.report.html),
            "ran": outcome.ran,
            "skipped": outcome.skipped,
            "summary": results.get("summary", []),
            "comparisons": results.get("comparisons", []),
            "cells": [
                {"id": c["cell"]["id"], "status": c.get("status"), "error": c.get("error")}
                for c in results.get("cells", [])
            ],
        },
        indent=2,
        default=str,
    )


def bench(
    config: Annotated[
        Path,
        typer.Argument(metavar="CONFIG", help="Bench configuration (YAML).", show_default=False),
    ],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Output directory (default: bench-<name>).")
    ] = None,
    engine: Annotated[str, typer.Option(help="inprocess or ray.")] = "inprocess",
    ray_address: Annotated[
        str | None, typer.Option(help="Ray cluster address (default: local Ray).")
    ] = None,
    retry_errors: Annotated[
        bool, typer.Option("--retry-errors", help="Rerun cells that ended with an error.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run a grid of templates × m × methods × seeds; write results.json and an HTML report.

    Finished cells are checkpointed: rerunning the same command resumes.
    """
    engine_name = check_engine_name(engine)
    cfg = load_bench_config(config)
    out_dir = out or Path(f"bench-{config.stem}")
    check_output_dir(out_dir, option="--out")
    with RichBenchObserver(err_console) as observer:
        outcome = asyncio.run(
            run_bench_async(
                cfg,
                out_dir,
                engine=engine_name,
                ray_address=ray_address,
                observer=observer,
                retry_errors=retry_errors,
            )
        )
    if as_json:
        typer.echo(_outcome_json(outcome))
        return
    _print_outcome(
        outcome, f"{escape(cfg.name)}: {outcome.ran} cell(s) run, {outcome.skipped} resumed"
    )


def demo(
    quick: Annotated[bool, typer.Option("--quick", help="The ~10-minute version.")] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output directory (default: sgde-demo[-quick])."),
    ] = None,
    template: Annotated[str, typer.Option(help="GSM-Hard template id.")] = DEFAULT_TEMPLATE,
    student: Annotated[str, typer.Option(help="Student model URI.")] = DEFAULT_STUDENT,
    teacher: Annotated[str, typer.Option(help="Teacher model URI.")] = DEFAULT_TEACHER,
    n_test: Annotated[
        int | None, typer.Option("--n-test", hidden=True, min=1, help="Test items (override).")
    ] = None,
    max_iters: Annotated[
        int | None,
        typer.Option("--max-iters", hidden=True, min=0, help="Compile iterations (override)."),
    ] = None,
    methods: Annotated[
        str | None, typer.Option("--methods", hidden=True, help="Comma-separated methods.")
    ] = None,
) -> None:
    """Offline end-to-end demo: baselines vs an SGDe-compiled plan on adversarial GSM-Hard items.

    Resumes an interrupted run from the checkpoints in --out.
    """
    options = DemoOptions(
        quick=quick,
        out_dir=out or Path("sgde-demo-quick" if quick else "sgde-demo"),
        template=template,
        student=student,
        teacher=teacher,
        n_test=n_test,
        max_iters=max_iters,
        methods=tuple(m.strip() for m in methods.split(",") if m.strip()) if methods else None,
    )
    check_output_dir(options.out_dir, option="--out")
    check_demo(options)
    err_console.print(
        f"[bold]sgde demo[/]{' --quick' if quick else ''}: student {escape(student)}, "
        f"teacher {escape(teacher)}, template {escape(template)} → {escape(str(options.out_dir))}",
        highlight=False,
    )
    with RichBenchObserver(err_console) as observer:
        outcome = asyncio.run(run_demo_async(options, observer=observer))
    rows = comparison_rows(outcome.results)
    out_console.print(_summary_table(rows, "Same student, same test items", per_m=False))
    for c in outcome.results["comparisons"]:
        out_console.print(
            f"  sgde vs {escape(c['baseline'])}: Δ {100 * c['delta']:+.1f} points on "
            f"{c['n_pairs']} paired items (McNemar p = {format_p_value(c['p_value'])})",
            highlight=False,
        )
    out_console.print(f"\nreport: [bold]{escape(str(outcome.report.html))}[/]", highlight=False)
