"""Model commands: ``sgde models list``, ``sgde models prepare NAME``, ``sgde models cache``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from sgde.cli.common import JsonOpt, out_console
from sgde.cli.output import dumps_json
from sgde.models import LOCAL_MODELS, PROVIDERS, RequestCache
from sgde.models.local import ensure_assembled, lookup_local_model, model_status
from sgde.models.settings import default_cache_dir, default_models_dir

__all__ = ["register"]

models_app = typer.Typer(
    name="models",
    help="List, prepare and manage models.",
    no_args_is_help=True,
)

ModelsDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--models-dir",
        help="Directory of assembled local models (default: $SGDE_MODELS_DIR or "
        "~/.cache/sgde/models).",
        show_default=False,
    ),
]


def _mb(size: int) -> str:
    return f"{size / 1_000_000:,.0f} MB"


@models_app.command("list")
def list_models(
    models_dir: ModelsDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the local models (size, installed?, assembled?, path) and the remote providers."""
    directory = models_dir or default_models_dir()
    statuses = [model_status(m, directory) for m in LOCAL_MODELS]
    if as_json:
        rows = [
            {
                "name": s.model.full_name,
                "title": s.model.title,
                "license": s.model.license,
                "size": s.model.size,
                "sha256": s.model.sha256,
                "installed": s.installed,
                "assembled": s.assembled,
                "path": str(s.path),
                "install": s.model.pip_lines(),
            }
            for s in statuses
        ]
        typer.echo(dumps_json({"local": rows, "providers": list(PROVIDERS)}, indent=2))
        return
    table = Table(title=f"Local models in {directory}", title_justify="left")
    for column in ("name", "size", "installed", "assembled", "path"):
        table.add_column(column, overflow="fold")
    for s in statuses:
        table.add_row(
            escape(s.model.full_name),
            _mb(s.model.size),
            "yes" if s.installed else "[red]no[/]",
            "yes" if s.assembled else "no",
            escape(s.path.name),
        )
    out_console.print(table)
    for s in statuses:
        if not s.installed:
            out_console.print(
                f"{s.model.full_name} ({s.model.title}): {s.model.pip_lines()}",
                markup=False,
                highlight=False,
            )
    out_console.print(
        "Also: local:/path/to/file.gguf, openai:MODEL, openai-compatible:MODEL (--base-url or "
        "SGDE_OPENAI_BASE_URL), ollama:MODEL, anthropic:MODEL",
        markup=False,
        highlight=False,
    )


@models_app.command("prepare")
def prepare(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME",
            help="Local model, e.g. smollm2-135m or local:smollm2-135m.",
            show_default=False,
        ),
    ],
    models_dir: ModelsDirOpt = None,
) -> None:
    """Assemble a local model from its installed packages and verify its sha256 (once)."""
    model = lookup_local_model(name)
    directory = models_dir or default_models_dir()
    status = model_status(model, directory)
    if status.installed and not status.assembled:
        out_console.print(
            f"assembling {model.full_name} ({_mb(model.size)}) ...", highlight=False, markup=False
        )
    path = ensure_assembled(model, directory)
    out_console.print(f"{model.full_name}: {path}", highlight=False, markup=False)
    out_console.print(f"sha256 {model.sha256} verified", highlight=False, markup=False)


@models_app.command("cache")
def cache(
    clear: Annotated[bool, typer.Option("--clear", help="Delete every cached response.")] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option("--cache-dir", help="Request cache directory.", show_default=False),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show (or clear) the request cache."""
    store = RequestCache.in_dir(cache_dir or default_cache_dir())
    try:
        if clear:
            removed = store.clear()
            if as_json:
                typer.echo(dumps_json({"path": str(store.path), "removed": removed}))
            else:
                out_console.print(
                    f"removed {removed} cached responses from {store.path}", markup=False
                )
        elif as_json:
            typer.echo(dumps_json({"path": str(store.path), "entries": len(store)}))
        else:
            out_console.print(
                f"{store.path}: {len(store)} cached responses", highlight=False, markup=False
            )
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Add the ``models`` command group to ``app``."""
    app.add_typer(models_app, name="models")
