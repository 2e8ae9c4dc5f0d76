"""``sgde compile`` (SGDe with a live view) and ``sgde bound`` (PAC calculator)."""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from sgde.cli.common import (
    ApiKeyOpt,
    JsonOpt,
    PricesOpt,
    check_output_dir,
    check_output_file,
    check_prices_file,
    err_console,
    out_console,
    parse_assignments,
)
from sgde.cli.output import dumps_json
from sgde.errors import DataError, UsageError
from sgde.models import DEFAULT_STUDENT, DEFAULT_TEACHER, ModelHub, ModelSettings
from sgde.optimize import CompileEvent, CompileResult, CompileSettings, compile_async
from sgde.optimize import pac as pac_mod
from sgde.optimize.compiler import resolve_task
from sgde.plan import Plan
from sgde.planfile import load_plan, save_plan
from sgde.runtime.calls import CodeRunner
from sgde.runtime.jsonl import read_jsonl
from sgde.task import FieldType, Metric, TaskSpec, infer_task, load_metric, parse_field_option

__all__ = ["bound", "compile_plan", "register"]


def register(app: typer.Typer) -> None:
    """Add ``sgde compile`` and ``sgde bound`` to the app."""
    app.command("compile")(compile_plan)
    app.command("bound")(bound)


def _open_hub(settings: ModelSettings) -> ModelHub:
    """The model hub of one compile (a seam for tests)."""
    return ModelHub(settings)


def _open_sandbox() -> contextlib.AbstractAsyncContextManager[CodeRunner]:
    """The sandbox pool of one compile (a seam for tests)."""
    from sgde.runtime.sandbox import SandboxPool

    return SandboxPool()


def _rows(path: Path, m: int) -> list[dict[str, Any]]:
    """The first ``m`` rows of the training file (fields and types are checked by the task)."""
    rows = read_jsonl(path)
    if len(rows) < m:
        raise DataError(
            f"the training file has {len(rows)} row(s), --rows asks for {m}",
            path=str(path),
            hint=f"add rows or pass --rows {len(rows)}",
        )
    return rows[:m]


class _LiveView:
    """Renders compile events: a live table on a terminal, plain lines otherwise."""

    def __init__(self, live: Live | None) -> None:
        self.live = live
        self.started = time.monotonic()
        self.state: dict[str, str] = {
            "iteration": "0",
            "loss": "—",
            "critique": "—",
            "edit": "—",
            "tokens": "0 teacher / 0 student",
        }

    def table(self) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column(overflow="ellipsis", no_wrap=True)
        elapsed = time.monotonic() - self.started
        for key in ("iteration", "loss", "critique", "edit", "tokens"):
            table.add_row(key, escape(self.state[key]))
        table.add_row("elapsed", f"{elapsed:.0f} s")
        return table

    def __call__(self, event: CompileEvent) -> None:
        self.state["iteration"] = str(event.iteration)
        if event.loss is not None:
            self.state["loss"] = f"{event.loss:.3f}"
        cost = f", ${event.usd:.4f}" if event.usd else ""
        self.state["tokens"] = (
            f"{event.teacher_tokens:,} teacher / {event.student_tokens:,} student{cost}"
        )
        if event.kind == "critique":
            self.state["critique"] = event.message
        elif event.kind in ("edit", "no_edit"):
            self.state["edit"] = event.message
        elif event.kind in ("accepted", "rejected"):
            self.state["edit"] = f"{event.kind}: {event.message}"
        if event.kind in ("checkpoint", "teacher_retry") and self.live is not None:
            self.live.update(self.table())
            return
        line = f"[{event.iteration}] {event.kind}: {event.message}"
        if self.live is not None:
            self.live.console.print(escape(line), highlight=False)
            self.live.update(self.table())
        else:
            err_console.print(escape(line), highlight=False)


def _resume_command(argv: list[str]) -> str:
    args = [a for a in argv if a != "--resume"]
    return "sgde " + " ".join(shlex.quote(a) for a in args) + " --resume"


async def _run(
    start: Plan | str,
    rows: list[dict[str, Any]],
    *,
    teacher: str,
    student: str,
    model_settings: ModelSettings,
    settings: CompileSettings,
    checkpoint_dir: Path,
    resume: bool,
    view: _LiveView,
    task: TaskSpec,
    metric: Metric | None,
    rows_where: str,
) -> tuple[CompileResult, dict[str, Any]]:
    async with contextlib.AsyncExitStack() as stack:
        hub = _open_hub(model_settings)
        stack.push_async_callback(hub.aclose)
        bindings = hub.bind({"teacher": teacher, "student": student})
        sandbox = await stack.enter_async_context(_open_sandbox())
        result = await compile_async(
            start,
            trainset=rows,
            teacher=bindings["teacher"],
            student=bindings["student"],
            sandbox=sandbox,
            settings=settings,
            checkpoint_dir=checkpoint_dir,
            resume=resume,
            events=view,
            task=task,
            metric=metric,
            rows_where=rows_where,
        )
        return result, hub.usage_report()


def _task_of(
    start: Plan | str,
    rows: list[dict[str, Any]],
    *,
    inputs: list[str] | None,
    outputs: list[str] | None,
    where: str,
) -> TaskSpec:
    """The typed task: fields from the plan or the options, types inferred or declared."""
    names: list[str] = []
    types: dict[str, FieldType] = {}
    for text in outputs or []:
        name, ftype = parse_field_option(text)
        names.append(name)
        if ftype is not None:
            types[name] = ftype
    ins = [parse_field_option(text)[0] for text in inputs or []]
    for text in inputs or []:
        name, ftype = parse_field_option(text)
        if ftype is not None:
            types[name] = ftype
    if isinstance(start, Plan):
        extra = [n for n in [*names, *ins] if n not in start.outputs and n not in start.inputs]
        if extra:
            raise UsageError(
                f"the plan has no field {', '.join(repr(n) for n in extra)}",
                hint="with a PLAN, --input/--output only declare types of its fields",
            )
        spec = resolve_task(start, rows, where=where)
        if not types:
            return spec
        return infer_task(
            rows,
            description=spec.description,
            inputs=list(start.inputs),
            outputs=list(start.outputs),
            types=types,
            where=where,
        )
    return infer_task(
        rows,
        description=start,
        inputs=ins or None,
        outputs=names or None,
        types=types,
        where=where,
    )


def compile_plan(
    train: Annotated[Path, typer.Option("--train", help="Training rows (JSONL).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the plan.")],
    plan: Annotated[
        Path | None,
        typer.Argument(
            metavar="PLAN",
            help="Starting plan (YAML). Omit and pass --task instead.",
            show_default=False,
        ),
    ] = None,
    task: Annotated[
        str | None, typer.Option("--task", help="Task text: the teacher drafts the plan.")
    ] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            metavar="NAME[:TYPE]",
            help="An input field of the rows (repeat; default: every field but the outputs).",
            show_default=False,
        ),
    ] = None,
    outputs: Annotated[
        list[str] | None,
        typer.Option(
            "--output",
            metavar="NAME[:TYPE]",
            help="An output field, optionally typed: answer:date, tags:set[string], "
            "label:enum[pos,neg] (repeat; default: answer/output/label/..., types inferred).",
            show_default=False,
        ),
    ] = None,
    metric_ref: Annotated[
        str | None,
        typer.Option(
            "--metric",
            metavar="MODULE:FUNCTION",
            help="Your metric(row, outputs) -> score in [0, 1], bool or (score, feedback); "
            "a module path or a file.py (default: per-type exact match).",
        ),
    ] = None,
    m: Annotated[
        int,
        typer.Option(
            "--rows", "--m", min=1, help="Use the first N training rows (the m of the PAC bound)."
        ),
    ] = 3,
    teacher: Annotated[str, typer.Option(help="Teacher model URI.")] = DEFAULT_TEACHER,
    student: Annotated[str, typer.Option(help="Student model URI.")] = DEFAULT_STUDENT,
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            metavar="ROLE=URI",
            help="teacher=URI or student=URI (as --teacher/--student; repeat per role).",
            show_default=False,
        ),
    ] = None,
    max_iters: Annotated[
        int, typer.Option("--max-iters", min=0, help="Most teacher iterations.")
    ] = 5,
    repeats: Annotated[int, typer.Option("--repeats", "-k", min=1, help="Runs per row.")] = 2,
    patience: Annotated[int, typer.Option(min=1, help="Stop after P failed tries.")] = 3,
    harden_probes: Annotated[
        int,
        typer.Option(
            "--harden-probes",
            min=0,
            max=200,
            help="Perturbed rows each copy step is probed on before the compile returns "
            "(0: skip; docs/compiler.md step 9).",
        ),
    ] = 12,
    budget_tokens: Annotated[
        int | None, typer.Option("--budget-tokens", min=1, help="Token cap (all roles).")
    ] = None,
    budget_usd: Annotated[
        float | None, typer.Option("--budget-usd", min=0.0, help="USD cap (all roles).")
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", help="Report + checkpoint directory [default: OUT.report/]"),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue from the checkpoint.")] = (
        False
    ),
    seed: Annotated[int, typer.Option(help="Base seed.")] = 0,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Endpoint of openai-compatible models.")
    ] = None,
    api_key: ApiKeyOpt = None,
    prices: PricesOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compile a plan (or a task) with SGDe: the teacher edits, the student runs.

    Writes the plan to --out; report.json, report.md and the checkpoint to --report.
    """
    if any(item.strip().isdigit() for item in models or []):
        raise UsageError(
            "-m/--model binds a model (ROLE=URI); the number of training rows is --rows N",
            hint="e.g. sgde compile PLAN --train rows.jsonl --rows 3 --out plan.yaml",
        )
    given = parse_assignments(models, option="--model")
    unknown = sorted(set(given) - {"teacher", "student"})
    if unknown:
        raise UsageError(
            f"sgde compile binds the roles teacher and student, not {', '.join(unknown)}",
            hint="e.g. -m teacher=local:qwen2.5-coder-1.5b -m student=local:smollm2-135m "
            "(the number of training rows is --rows N)",
        )
    teacher = given.get("teacher", teacher)
    student = given.get("student", student)
    if (plan is None) == (task is None):
        raise UsageError(
            "give either a PLAN file or --task TEXT (exactly one)",
            hint='e.g. sgde compile --task "Answer the word problem." --train rows.jsonl',
        )
    if budget_tokens is not None and budget_usd is not None:
        raise UsageError("give --budget-tokens or --budget-usd, not both")
    start: Plan | str = load_plan(plan) if plan is not None else str(task)
    check_output_file(out, option="--out", inputs=[plan, train])
    report_dir = report or out.with_name(out.stem + ".report")
    check_output_dir(report_dir, option="--report")
    check_prices_file(prices)
    metric = load_metric(metric_ref) if metric_ref is not None else None
    rows = _rows(train, m)
    spec = _task_of(start, rows, inputs=inputs, outputs=outputs, where=str(train))
    shown = err_console if as_json else out_console
    shown.print(
        f"task: {escape(spec.description)}\n{escape(spec.describe())}"
        + (f"\nmetric: {escape(metric_ref)}" if metric_ref else ""),
        highlight=False,
    )
    checkpoint_dir = report_dir / "checkpoint"
    if resume and not (checkpoint_dir / "state.json").is_file():
        raise UsageError(
            f"nothing to resume: no checkpoint in {checkpoint_dir}",
            hint="run the same command without --resume",
        )
    settings = CompileSettings(
        max_iters=max_iters,
        repeats=repeats,
        patience=patience,
        seed=seed,
        harden_probes=harden_probes,
    )
    model_settings = ModelSettings(
        base_url=base_url,
        api_key=api_key,
        prices_file=prices,
        budget_tokens=budget_tokens,
        budget_usd=budget_usd,
        use_cache={"teacher": True, "student": True},
    )
    live: Live | None = None
    if err_console.is_terminal:
        live = Live(console=err_console, refresh_per_second=4, transient=False)
    view = _LiveView(live)
    try:
        with live if live is not None else contextlib.nullcontext():
            result, _hub_usage = asyncio.run(
                _run(
                    start,
                    rows,
                    teacher=teacher,
                    student=student,
                    model_settings=model_settings,
                    settings=settings,
                    checkpoint_dir=checkpoint_dir,
                    resume=resume,
                    view=view,
                    task=spec,
                    metric=metric,
                    rows_where=str(train),
                )
            )
    except KeyboardInterrupt:
        err_console.print(
            f"[yellow]interrupted.[/] The checkpoint in {escape(str(checkpoint_dir))} keeps every "
            "completed iteration; continue with:\n  "
            + escape(_resume_command(sys.argv[1:] or ["compile"])),
            highlight=False,
        )
        raise typer.Exit(130) from None
    save_plan(result.plan, out)
    rep = result.report  # its usage is the compile's ledger: spent, cached and replayed
    json_path, md_path = rep.write(report_dir)
    accepted = rep.accepted_edits()
    if as_json:
        summary = {
            "plan": str(out),
            "plan_name": rep.plan_name,
            "report_json": str(json_path),
            "report_md": str(md_path),
            "initial_loss": rep.initial_loss,
            "final_loss": rep.final_loss,
            "iterations": len(rep.iterations),
            "stop_reason": rep.stop_reason,
            "accepted_edits": list(accepted),
            "usage": rep.usage,
            "wall_s": rep.wall_s,
            "pac": rep.pac,
            "task": spec.to_metadata(),
        }
        typer.echo(dumps_json(summary, indent=2, default=str))
        return
    out_console.print(
        f"compiled [bold]{escape(rep.plan_name)}[/]: training loss "
        f"{rep.initial_loss:.3f} → {rep.final_loss:.3f} in {len(rep.iterations)} iteration(s) "
        f"({escape(rep.stop_reason)})",
        highlight=False,
    )
    for edit in accepted:
        out_console.print(f"  accepted: {escape(edit)}", highlight=False)
    teacher_tokens = rep.usage.get("teacher", {}).get("total_tokens", 0)
    student_tokens = rep.usage.get("student", {}).get("total_tokens", 0)
    out_console.print(
        f"  tokens: {teacher_tokens:,} teacher, {student_tokens:,} student; "
        f"wall {rep.wall_s:.0f} s",
        highlight=False,
    )
    out_console.print(f"  {escape(str(rep.pac.get('text', '')))}", highlight=False)
    out_console.print(
        f"plan → {escape(str(out))}; report → {escape(str(json_path))}, {escape(str(md_path))}",
        highlight=False,
    )


def bound(
    delta: Annotated[float, typer.Option("--delta", help="Failure probability δ.")] = 0.05,
    hypotheses: Annotated[
        int, typer.Option("--hypotheses", "-H", min=1, help="|H|: candidate plans evaluated.")
    ] = 10,
    epsilon: Annotated[
        float | None, typer.Option("--epsilon", help="Target true error ε (solve for m).")
    ] = None,
    m: Annotated[
        int | None, typer.Option("--m", "--rows", min=1, help="Training rows (solve for ε).")
    ] = None,
    ln_prior: Annotated[
        float | None,
        typer.Option("--ln-prior", min=0.0, help="ln(1/P(h)) for the Occam/prior form."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """PAC sample complexity (realisable): m ≥ (ln|H| + ln(1/δ)) / ε, and the Occam form.

    Give --epsilon to get the m needed, or --m to get the ε guaranteed. Assumes i.i.d. rows,
    a plan consistent with every training row, and H = the candidate plans evaluated.
    """
    if epsilon is None and m is None:
        raise UsageError("give --epsilon (to solve for m) or --m (to solve for ε)")
    result: dict[str, Any] = {"delta": delta, "hypotheses": hypotheses, "ln_prior": ln_prior}
    lines: list[str] = []
    if epsilon is not None:
        need = pac_mod.sample_size(epsilon, delta, hypotheses)
        result.update(epsilon=epsilon, m_needed=need)
        lines.append(
            f"finite class: m ≥ (ln {hypotheses} + ln(1/{delta:g})) / {epsilon:g} → m = {need}"
        )
        if ln_prior is not None:
            need_occam = pac_mod.sample_size_occam(epsilon, delta, ln_prior)
            result["m_needed_occam"] = need_occam
            lines.append(
                f"Occam form: m ≥ ({ln_prior:g} + ln(1/{delta:g})) / {epsilon:g} → m = {need_occam}"
            )
    if m is not None:
        eps = pac_mod.epsilon_for(m, delta, hypotheses)
        result.update(m=m, epsilon_guaranteed=eps, vacuous=eps >= 1)
        note = " (vacuous: ε ≥ 1)" if eps >= 1 else ""
        lines.append(
            f"finite class: with m = {m}, |H| = {hypotheses}, δ = {delta:g}: ε = {eps:.4f}{note}"
        )
        if ln_prior is not None:
            eps_o = pac_mod.epsilon_occam(m, delta, ln_prior)
            result["epsilon_guaranteed_occam"] = eps_o
            lines.append(f"Occam form: ε = {eps_o:.4f}")
    if as_json:
        typer.echo(dumps_json(result, indent=2))
        return
    for line in lines:
        out_console.print(line, highlight=False, markup=False)
