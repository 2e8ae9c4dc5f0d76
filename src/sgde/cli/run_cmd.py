"""``sgde run``: run a plan on one input or over a JSONL dataset, printing outputs as JSON."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import TextColumn

from sgde.cli.common import (
    EXIT_FAILURE,
    EXIT_INCOMPLETE,
    ApiKeyOpt,
    OutputFile,
    PricesOpt,
    check_output_file,
    check_prices_file,
    check_resumable,
    err_console,
    item_progress,
    parse_assignments,
    parse_input_value,
    report_incomplete,
)
from sgde.cli.output import dumps_json
from sgde.errors import BudgetExceeded, DataError, UsageError
from sgde.evaluation.outcomes import run_error_kind
from sgde.evaluation.results_log import ResultsLog, default_results_path
from sgde.models import DEFAULT_STUDENT, ModelHub, ModelSettings
from sgde.models.plan_models import plan_model_targets
from sgde.plan import CodeNode, Plan, plan_hash
from sgde.planfile import load_plan
from sgde.runtime.backend import Backend, Usage
from sgde.runtime.calls import CodeRunner
from sgde.runtime.executor import Executor, ExecutorSettings, RunResult
from sgde.runtime.inputs import coerce_inputs
from sgde.runtime.jsonl import iter_jsonl

__all__ = ["read_dataset", "register", "run"]


def register(app: typer.Typer) -> None:
    """Add ``sgde run`` to the app."""
    app.command("run")(run)


def read_dataset(path: Path, plan: Plan, *, limit: int | None = None) -> list[dict[str, Any]]:
    """Read a JSONL dataset and check every row against the plan's inputs.

    Args:
        path: JSONL file, one JSON object per line (blank lines skipped).
        plan: The plan whose inputs each row must provide (extra keys are kept).
        limit: Read at most this many rows.

    Returns:
        The rows, with plan inputs coerced to their declared types.

    Raises:
        DataError: naming ``file:line`` for unreadable files, invalid JSON, rows that are
            not objects, or rows with missing/invalid inputs.
    """
    rows: list[dict[str, Any]] = []
    for number, row in iter_jsonl(path, what="dataset"):
        if limit is not None and len(rows) >= limit:
            break
        try:
            rows.append({**row, **coerce_inputs(plan, row)})
        except UsageError as exc:
            hint = exc.hint
            if any(name not in row for name in plan.inputs):
                example = json.dumps({name: "..." for name in plan.inputs})
                hint = f"each row needs the plan's inputs as top-level keys, e.g. {example}"
            raise DataError(exc.message, path=str(path), line=number, hint=hint) from None
    if not rows:
        raise DataError("dataset has no rows", path=str(path))
    return rows


def _input_row(plan: Plan, items: list[str]) -> dict[str, Any]:
    raw = parse_assignments(items, option="--input")
    unknown = [name for name in raw if name not in plan.inputs]
    if unknown:
        declared = ", ".join(f"{n} ({t})" for n, t in plan.inputs.items()) or "none"
        raise UsageError(
            f"plan '{plan.name}' has no input {', '.join(repr(u) for u in unknown)}; "
            f"its inputs are: {declared}",
            hint="check the spelling of --input NAME=VALUE",
        )
    values = {
        name: value if plan.inputs[name] == "string" else parse_input_value(value)
        for name, value in raw.items()
    }
    return coerce_inputs(plan, values)


def _model_targets(plan: Plan, items: list[str] | None) -> dict[str, str]:
    choice = plan_model_targets(plan, parse_assignments(items, option="--model"))
    for note in choice.warnings:
        err_console.print(f"[yellow]warning:[/] {escape(note)}", highlight=False)
    return choice.names()


def _open_hub(settings: ModelSettings) -> ModelHub:
    """The model hub of one ``sgde run`` (a seam for tests)."""
    return ModelHub(settings)


def _open_sandbox() -> contextlib.AbstractAsyncContextManager[CodeRunner]:
    """The sandbox pool of one ``sgde run`` (a seam for tests)."""
    from sgde.runtime.sandbox import SandboxPool

    return SandboxPool()


def _record(index: int, row: Mapping[str, Any], result: RunResult) -> dict[str, Any]:
    """The printed record of one row; ``error_kind`` marks a row that could not run."""
    record: dict[str, Any] = {"index": index}
    if "id" in row:
        record["id"] = row["id"]
    record.update(ok=result.ok, outputs=result.outputs)
    if result.error is not None:
        record["error"] = result.error
        kind = run_error_kind(result.trace)
        if kind is not None:
            record["error_kind"] = kind
    return record


def _line(index: int, row: Mapping[str, Any], result: RunResult) -> str:
    return dumps_json(_record(index, row, result), default=str)


def _usage_text(usage: Mapping[str, Usage]) -> str:
    parts = [f"{role}: {u.total_tokens:,} tokens in {u.calls:,} calls" for role, u in usage.items()]
    return "; ".join(parts)


class _OrderedSink:
    """Writes results to stdout (and traces to a file) in row order as rows finish; appends
    each to the results log as soon as it finishes. ``stored`` are the records of rows a
    resumed log already holds: they are printed in their place, not run again."""

    def __init__(
        self,
        rows: list[dict[str, Any]],
        trace_file: OutputFile | None,
        *,
        log: ResultsLog | None = None,
        stored: Mapping[int, Mapping[str, Any]] | None = None,
    ) -> None:
        self._rows = rows
        self._trace_file = trace_file
        self._log = log
        self._pending: dict[int, tuple[str, str | None]] = {}
        self._next = 0
        self.ok = 0
        self.done = 0
        self.not_run: dict[str, int] = {}
        for index, record in sorted((stored or {}).items()):
            printed = {k: v for k, v in record.items() if k != "trace"}
            trace = record.get("trace")
            trace_json = json.dumps(trace, ensure_ascii=False, default=str) if trace else None
            self._put(index, dumps_json(printed, default=str), trace_json, ok=bool(record["ok"]))

    def add(self, index: int, result: RunResult) -> None:
        record = _record(index, self._rows[index], result)
        ran = "error_kind" not in record
        if not ran:
            kind = str(record["error_kind"])
            self.not_run[kind] = self.not_run.get(kind, 0) + 1
        if self._log is not None:
            kept = {**record, "trace": result.trace.to_dict()} if self._trace_file else record
            self._log.append(index, self._rows[index], kept, ran=ran)
        trace_json = result.trace.to_json() if self._trace_file is not None else None
        self._put(index, dumps_json(record, default=str), trace_json, ok=result.ok)

    def _put(self, index: int, line: str, trace_json: str | None, *, ok: bool) -> None:
        self._pending[index] = (line, trace_json)
        self.ok += int(ok)
        self.done += 1
        while self._next in self._pending:
            text, trace = self._pending.pop(self._next)
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
            if self._trace_file is not None and trace is not None:
                self._trace_file.write(trace + "\n")
                self._trace_file.flush()
            self._next += 1


async def _execute(
    plan: Plan,
    rows: list[dict[str, Any]],
    *,
    single: bool,
    targets: dict[str, str],
    model_settings: ModelSettings,
    trace_path: Path | None,
    seed: int,
    concurrency: int,
    full_record: bool = False,
    results_path: Path | None = None,
    resume: bool = False,
    dataset: Path | None = None,
) -> int:
    started = time.perf_counter()
    async with contextlib.AsyncExitStack() as stack:
        bindings: dict[str, Backend] = {}
        hub: ModelHub | None = None
        if targets:
            hub = _open_hub(model_settings)
            stack.push_async_callback(hub.aclose)
            bindings = hub.bind(targets)
        sandbox: CodeRunner | None = None
        if any(isinstance(n, CodeNode) for n in plan.nodes):
            sandbox = await stack.enter_async_context(_open_sandbox())
        executor = Executor(
            bindings, sandbox=sandbox, settings=ExecutorSettings(max_concurrency=concurrency)
        )
        trace_file = (
            stack.enter_context(OutputFile(trace_path, option="--trace")) if trace_path else None
        )

        if single:
            result = await executor.run(plan, rows[0], seed=seed)
            if full_record:
                sys.stdout.write(_line(0, rows[0], result) + "\n")
            else:
                sys.stdout.write(dumps_json(result.outputs, default=str) + "\n")
            if trace_file is not None:
                trace_file.write(result.trace.to_json() + "\n")
            if not result.ok:
                err_console.print(
                    f"[bold red]error:[/] {escape(result.error or '')}", highlight=False
                )
            if result.ok:
                return 0
            return EXIT_INCOMPLETE if run_error_kind(result.trace) else EXIT_FAILURE

        log: ResultsLog | None = None
        stored: dict[int, dict[str, Any]] = {}
        if results_path is not None:
            header: dict[str, Any] = {"command": "run", "plan": plan.name, "seed": seed}
            header.update(plan_hash=plan_hash(plan), models=targets, dataset=str(dataset))
            log = stack.enter_context(ResultsLog(results_path, header, resume=resume))
            stored = log.finished(rows)
        todo = [i for i in range(len(rows)) if i not in stored]
        sink = _OrderedSink(rows, trace_file, log=log, stored=stored)
        progress = item_progress(
            "[bold]{task.description}",
            TextColumn("{task.fields[failed]} failed"),
            transient=True,
            disable=not err_console.is_terminal,
            redirect_stdout=sys.stdout.isatty(),
            redirect_stderr=False,
        )
        with progress:
            task = progress.add_task(escape(plan.name), total=len(rows), failed=0)

            progress.update(task, completed=sink.done, failed=sink.done - sink.ok)

            def on_result(index: int, result: RunResult) -> None:
                sink.add(todo[index], result)
                progress.update(task, advance=1, failed=sink.done - sink.ok)

            stopped: BudgetExceeded | None = None
            try:
                await executor.run_batch(
                    plan, [rows[i] for i in todo], seed=seed, on_result=on_result
                )
            except BudgetExceeded as exc:  # the rows in flight are lost; finished ones kept
                stopped = exc
        elapsed = time.perf_counter() - started
        summary = f"{sink.ok}/{len(rows)} rows ok in {elapsed:.1f} s"
        if stored:
            summary += f" ({len(stored)} resumed from {results_path})"
        if hub is not None and hub.usage:
            summary += f" ({_usage_text(hub.usage)})"
        err_console.print(summary, highlight=False)
        kinds = dict(sink.not_run)
        if stopped is not None:
            err_console.print(f"[bold red]error:[/] {escape(str(stopped))}", highlight=False)
            kinds["budget"] = kinds.get("budget", 0) + len(rows) - sink.done
        if kinds:
            report_incomplete(sum(kinds.values()), len(rows), kinds, results_path)
            return EXIT_INCOMPLETE
        return 0 if sink.ok == len(rows) else EXIT_FAILURE


def run(
    plan_path: Annotated[
        Path, typer.Argument(metavar="PLAN", help="Plan file (YAML).", show_default=False)
    ],
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            "-i",
            metavar="NAME=VALUE",
            help="A plan input (repeat for each). Values of non-string inputs are read as JSON.",
            show_default=False,
        ),
    ] = None,
    dataset: Annotated[
        Path | None,
        typer.Option(
            "--dataset",
            "-d",
            metavar="FILE.jsonl",
            help="Run over every row of a JSONL file (plan input names as keys).",
            show_default=False,
        ),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            metavar="ROLE=URI",
            help=f"Bind a model role, e.g. student={DEFAULT_STUDENT} (repeat per role).",
            show_default=False,
        ),
    ] = None,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            help="Base URL of an OpenAI-compatible server (for openai-compatible: models).",
            show_default=False,
        ),
    ] = None,
    trace: Annotated[
        Path | None,
        typer.Option(
            "--trace", metavar="FILE", help="Write run traces as JSONL.", show_default=False
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Run seed.")] = 0,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Model/code calls in flight at once.")
    ] = 4,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", min=1, help="Use only the first N dataset rows.", show_default=False
        ),
    ] = None,
    api_key: ApiKeyOpt = None,
    prices: PricesOpt = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print the full record {index, ok, outputs, error} of a single run, as "
            "--dataset prints for every row (default for --input: the outputs only).",
        ),
    ] = False,
    results: Annotated[
        Path | None,
        typer.Option(
            "--results",
            metavar="FILE",
            help="With --dataset: append each row's record here as it finishes (JSONL; "
            "default with --trace: TRACE.results.jsonl next to it).",
            show_default=False,
        ),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="With --dataset: print the rows already in the results file and run only "
            "the rest (rows that could not run are run again).",
        ),
    ] = False,
) -> None:
    """Run a plan and print its outputs as JSON (one line per row for --dataset).

    Exits 1 when a row failed and 3 when a row could not run (a model endpoint, the
    sandbox or the budget failed; --resume runs those rows again).
    """
    if bool(inputs) == (dataset is not None):
        raise UsageError(
            "pass either --input NAME=VALUE (one run) or --dataset FILE.jsonl (many runs)",
            hint="e.g. sgde run examples/arithmetic.yaml --input a=2 --input b=3",
        )
    if dataset is None and (results is not None or resume):
        raise UsageError(
            "--results and --resume apply to --dataset runs",
            hint="run a dataset with --dataset FILE.jsonl, or drop --results/--resume",
        )
    plan = load_plan(plan_path)
    if dataset is not None:
        rows = read_dataset(dataset, plan, limit=limit)
    else:
        rows = [_input_row(plan, inputs or [])]
    targets = _model_targets(plan, models)
    check_output_file(trace, option="--trace", inputs=[plan_path, dataset])
    results_path = (results or default_results_path(trace)) if dataset is not None else None
    check_resumable(results_path, resume=resume, inputs=[plan_path, dataset, trace])
    check_prices_file(prices)
    code = asyncio.run(
        _execute(
            plan,
            rows,
            single=dataset is None,
            targets=targets,
            model_settings=ModelSettings(base_url=base_url, api_key=api_key, prices_file=prices),
            trace_path=trace,
            seed=seed,
            concurrency=concurrency,
            full_record=as_json,
            results_path=results_path,
            resume=resume,
            dataset=dataset,
        )
    )
    if code:
        raise typer.Exit(code)
