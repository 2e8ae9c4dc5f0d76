"""Shared CLI helpers: the console, error rendering, ``ROLE=URI`` and ``name=value`` parsing."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from sgde.errors import SgdeError, UsageError

__all__ = [
    "check_output_parent",
    "err_console",
    "item_progress",
    "out_console",
    "parse_assignments",
    "parse_input_value",
    "run_cli",
]

out_console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def run_cli(app: typer.Typer, args: list[str] | None = None) -> int:
    """Run ``app`` and return its exit code; render :class:`SgdeError` as a message (exit 1).

    Never shows a traceback for sgde errors; ``SGDE_DEBUG=1`` re-raises so developers see it.
    """
    try:
        app(args=args, prog_name="sgde")
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except SgdeError as exc:
        if os.environ.get("SGDE_DEBUG"):
            raise
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
        return 1
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return 0


def parse_input_value(raw: str) -> Any:
    """Parse a ``--input`` value: JSON when it parses (numbers, lists, objects), else a string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def parse_assignments(items: list[str] | None, *, option: str) -> dict[str, str]:
    """Parse repeated ``key=value`` options into a dict.

    Raises:
        UsageError: naming the option and the bad item.
    """
    out: dict[str, str] = {}
    for item in items or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise UsageError(
                f"{option} {item!r} is not of the form NAME=VALUE",
                hint=f"e.g. {option} student=local:smollm2-135m",
            )
        out[key.strip()] = value
    return out


def check_output_parent(path: Path | None, *, option: str) -> None:
    """Fail early when the directory of an output file does not exist.

    Runs can take long; a missing directory should not surface only when the result is
    written at the end.

    Raises:
        UsageError: naming the option and the directory.
    """
    if path is not None and not path.parent.is_dir():
        raise UsageError(
            f"cannot write {option} {path}: directory {str(path.parent)!r} does not exist",
            hint=f"create the directory or pick another {option} path",
        )


def item_progress(
    description: str = "{task.description}",
    *extra: ProgressColumn,
    console: Console | None = None,
    **options: Any,
) -> Progress:
    """The progress bar of every sgde command: text, bar, ``done/total``, elapsed time.

    Args:
        description: The first column's text (rich markup and ``{task...}`` fields).
        *extra: Columns after the elapsed time (e.g. a failure count).
        console: Where to draw (default: stderr, so stdout stays machine-readable).
        **options: Other :class:`rich.progress.Progress` options (``transient``, ``disable``).
    """
    return Progress(
        TextColumn(description),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        *extra,
        console=console if console is not None else err_console,
        **options,
    )
