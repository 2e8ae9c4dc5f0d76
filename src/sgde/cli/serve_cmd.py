"""``sgde serve`` (the plan server), ``sgde log`` (the production log), ``sgde recompile``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from sgde.cli.common import (
    check_output_parent,
    err_console,
    out_console,
    parse_assignments,
    parse_input_value,
)
from sgde.errors import UsageError
from sgde.models import DEFAULT_STUDENT, DEFAULT_TEACHER, ModelHub, ModelSettings
from sgde.models.plan_models import plan_model_targets
from sgde.plan import plan_hash
from sgde.planfile import load_plan, save_plan

__all__ = ["log_app", "recompile", "register", "serve"]

log_app = typer.Typer(help="The production request log: list, label, export.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add ``sgde serve``, ``sgde log`` and ``sgde recompile`` to the app."""
    app.command("serve")(serve)
    app.add_typer(log_app, name="log")
    app.command("recompile")(recompile)


def _require_serve() -> None:
    for module in ("fastapi", "uvicorn"):
        try:
            __import__(module)
        except ImportError:
            raise UsageError(
                f"sgde serve needs {module}, which is not installed",
                hint='pip install "sgde[serve]"',
            ) from None


def serve(
    sources: Annotated[
        list[Path],
        typer.Argument(
            metavar="PLAN_OR_DIR...",
            help="Plan files and directories of plan files (each file one version).",
            show_default=False,
        ),
    ],
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=0, max=65535)] = 8000,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            metavar="ROLE=URI",
            help="Override the plans' recorded model of a role (repeat per role).",
            show_default=False,
        ),
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="Base URL of an OpenAI-compatible endpoint.")
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Plan runs in flight at once.", min=1)] = 4,
    queue: Annotated[
        int, typer.Option(help="Requests that may wait; more get 429 + Retry-After.", min=0)
    ] = 64,
    timeout: Annotated[
        float, typer.Option(help="Per-request deadline in seconds (504 past it).", min=0.001)
    ] = 120.0,
    max_body_bytes: Annotated[
        int, typer.Option(help="Largest request body.", min=1024)
    ] = 1_048_576,
    max_batch: Annotated[int, typer.Option(help="Most rows in one batch request.", min=1)] = 256,
    log: Annotated[
        Path | None,
        typer.Option("--log", help="SQLite production log of every request (opt-in)."),
    ] = None,
    routing: Annotated[
        Path | None,
        typer.Option(
            help="Traffic-weights file (default: routing.yaml in the first directory served)."
        ),
    ] = None,
    watch: Annotated[
        float, typer.Option(help="Seconds between checks for changed plan files (0: off).", min=0)
    ] = 2.0,
    admin_token: Annotated[
        str | None,
        typer.Option(
            help="Bearer token of the admin endpoints (default: $SGDE_ADMIN_TOKEN).",
            show_default=False,
        ),
    ] = None,
    otel: Annotated[
        str, typer.Option(help="Export OpenTelemetry spans: none, console or otlp.")
    ] = "none",
    threads: Annotated[
        int | None, typer.Option(help="CPU threads of embedded models.", min=1)
    ] = None,
) -> None:
    """Serve plans over HTTP: versions, A/B weights, rollback, metrics, traces, a request log."""
    _require_serve()
    from sgde.serve.server import build_app, configure_logging, run_server
    from sgde.serve.settings import ServeSettings

    check_output_parent(log, option="--log")
    configure_logging()
    if routing is None:
        first_dir = next((s for s in sources if s.is_dir()), None)
        routing = first_dir / "routing.yaml" if first_dir is not None else None
    settings = ServeSettings(
        host=host,
        port=port,
        max_concurrency=concurrency,
        queue_size=queue,
        request_timeout_s=timeout,
        max_body_bytes=max_body_bytes,
        max_batch=max_batch,
        admin_token=admin_token or os.environ.get("SGDE_ADMIN_TOKEN") or None,
        log_path=log,
        routing_path=routing,
        watch_interval_s=watch,
    )
    app, service = build_app(
        sources,
        settings,
        models=parse_assignments(model, option="--model"),
        model_settings=ModelSettings(base_url=base_url, n_threads=threads),
        otel=otel,
    )
    for entry in service.registry.entries.values():
        split = ", ".join(f"{entry.versions[v].short} {w:.0%}" for v, w in entry.weights.items())
        err_console.print(
            f"serving [bold]{escape(entry.name)}[/] ({len(entry.versions)} version(s): "
            f"{escape(split)})",
            highlight=False,
        )
    err_console.print(
        f"listening on http://{host}:{port}  (API docs: http://{host}:{port}/docs)",
        highlight=False,
    )
    run_server(app, settings)


# -- sgde log --------------------------------------------------------------------------------
def _open_log(path: Path) -> Any:
    from sgde.serve.log import RequestLog

    return RequestLog(path, create=False)


@log_app.command("list")
def log_list(
    path: Annotated[Path, typer.Argument(metavar="LOG", help="The request log (SQLite).")],
    plan: Annotated[str | None, typer.Option(help="Only this plan name.")] = None,
    version: Annotated[str | None, typer.Option(help="Only this version (prefix).")] = None,
    labelled: Annotated[
        bool | None, typer.Option("--labelled/--unlabelled", help="Only (un)labelled rows.")
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most N rows.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List logged requests (oldest first)."""
    log = _open_log(path)
    try:
        rows = log.rows(plan=plan, version=version, labelled=labelled, limit=limit)
    finally:
        log.close()
    if as_json:
        for rec in rows:
            typer.echo(json.dumps(rec.to_dict(), ensure_ascii=False, default=str))
        return
    table = Table(title=f"{path} — {len(rows)} request(s)", title_justify="left")
    for col in ("id", "time", "plan", "version", "status", "outputs", "label"):
        table.add_column(col)
    for rec in rows:
        table.add_row(
            rec.id,
            rec.ts,
            rec.plan,
            rec.version.split(":", 1)[-1][:12],
            str(rec.status),
            json.dumps(rec.outputs, ensure_ascii=False, default=str)[:60],
            json.dumps(rec.label, ensure_ascii=False)[:40] if rec.label else "–",
        )
    out_console.print(table)


@log_app.command("label")
def log_label(
    path: Annotated[Path, typer.Argument(metavar="LOG", help="The request log (SQLite).")],
    request_id: Annotated[str, typer.Argument(metavar="REQUEST_ID", help="The request's id.")],
    values: Annotated[
        list[str],
        typer.Argument(metavar="OUTPUT=VALUE...", help="Correct output values (JSON values)."),
    ],
) -> None:
    """Attach the correct outputs to a logged request (e.g. ``answer=18``)."""
    label = {k: parse_input_value(v) for k, v in parse_assignments(values, option="label").items()}
    log = _open_log(path)
    try:
        record = log.label(request_id, label)
    finally:
        log.close()
    err_console.print(
        f"labelled {escape(record.id)} ({escape(record.plan)}): "
        f"{escape(json.dumps(record.label, ensure_ascii=False))}",
        highlight=False,
    )


@log_app.command("export")
def log_export(
    path: Annotated[Path, typer.Argument(metavar="LOG", help="The request log (SQLite).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="JSONL file to write.")],
    plan: Annotated[str | None, typer.Option(help="Only this plan name.")] = None,
) -> None:
    """Write the labelled rows as a JSONL dataset (inputs + correct outputs, with ids)."""
    from sgde.planfile.files import write_text_atomic

    check_output_parent(out, option="--out")
    log = _open_log(path)
    try:
        rows = log.rows(plan=plan, labelled=True)
    finally:
        log.close()
    lines = [
        json.dumps({"id": r.id, **r.inputs, **(r.label or {})}, ensure_ascii=False) for r in rows
    ]
    write_text_atomic(out, "".join(line + "\n" for line in lines))
    err_console.print(f"wrote {len(lines)} labelled row(s) to {escape(str(out))}", highlight=False)


# -- sgde recompile --------------------------------------------------------------------------
def _open_hub(settings: ModelSettings) -> ModelHub:
    """The model hub of one recompile (a seam for tests)."""
    return ModelHub(settings)


def _open_sandbox() -> contextlib.AbstractAsyncContextManager[Any]:
    """The sandbox of one recompile (a seam for tests)."""
    from sgde.runtime.sandbox import SandboxPool

    return SandboxPool(workers=1)


def recompile(
    plan_path: Annotated[Path, typer.Argument(metavar="PLAN", help="The served plan (YAML).")],
    from_log: Annotated[Path, typer.Option("--from-log", help="The request log (SQLite).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the new version.")],
    teacher: Annotated[str, typer.Option(help="Teacher model URI.")] = DEFAULT_TEACHER,
    model: Annotated[
        list[str] | None,
        typer.Option("--model", "-m", metavar="ROLE=URI", help="Override the plan's student."),
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="Only rows served by this version (prefix).")
    ] = None,
    max_train: Annotated[
        int | None, typer.Option(help="Train on the N most recent labelled rows.", min=1)
    ] = None,
    max_iters: Annotated[int, typer.Option(help="Compiler iterations.", min=0)] = 5,
    base_url: Annotated[
        str | None, typer.Option(help="Base URL of an OpenAI-compatible endpoint.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Compile a new version from the log's labelled rows; report old vs new accuracy on them.

    Nothing is promoted: the new plan is written to --out; copy it into the served directory
    (or POST /v1/admin/plans/NAME/promote) once the figures convince you.
    """
    from sgde.optimize import CompileSettings
    from sgde.serve.recompile import recompile_from_log

    check_output_parent(out, option="--out")
    plan = load_plan(plan_path)
    given = parse_assignments(model, option="--model")
    student = given.get("student", DEFAULT_STUDENT)
    with contextlib.suppress(UsageError):  # no recorded student: the default one
        choice = plan_model_targets(plan, given)
        for note in choice.warnings:
            err_console.print(f"[yellow]warning:[/] {escape(note)}", highlight=False)
        student = choice.names().get("student", student)
    log = _open_log(from_log)

    async def go() -> Any:
        async with contextlib.AsyncExitStack() as stack:
            hub = _open_hub(ModelSettings(base_url=base_url))
            stack.push_async_callback(hub.aclose)
            bindings = hub.bind({"teacher": teacher, "student": student})
            sandbox = await stack.enter_async_context(_open_sandbox())
            return await recompile_from_log(
                plan,
                log,
                teacher=bindings["teacher"],
                student=bindings["student"],
                sandbox=sandbox,
                settings=CompileSettings(max_iters=max_iters),
                version=version,
                max_train=max_train,
                events=None
                if as_json
                else lambda e: err_console.print(
                    f"[{e.iteration}] {escape(e.kind)}: {escape(e.message)}", highlight=False
                ),
            )

    try:
        outcome = asyncio.run(go())
    finally:
        log.close()
    save_plan(outcome.new_plan, out)
    summary = outcome.to_dict()
    summary["out"] = str(out)
    if as_json:
        typer.echo(json.dumps(summary, indent=1))
        return
    table = Table(
        title=f"{plan.name}: {len(outcome.rows)} labelled row(s), trained on {outcome.trained_on}",
        title_justify="left",
    )
    for col in ("plan", "version", "accuracy on the labelled rows"):
        table.add_column(col)
    table.add_row("served (old)", plan_hash(plan)[7:19], f"{100 * outcome.old_accuracy:.1f} %")
    table.add_row(
        "recompiled (new)", plan_hash(outcome.new_plan)[7:19], f"{100 * outcome.new_accuracy:.1f} %"
    )
    out_console.print(table)
    verdict = "better" if outcome.improved else "not better"
    out_console.print(
        f"new version written to {escape(str(out))} ({verdict}; nothing promoted)", highlight=False
    )
