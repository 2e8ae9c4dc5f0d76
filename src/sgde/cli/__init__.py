"""The ``sgde`` command line (typer). The console script runs :func:`main`.

Each command group lives in its own module (``plan_cmds``, ``run_cmd``, ``eval_cmds``, ...)
and registers itself on the typer app in :mod:`sgde.cli.app`; :mod:`sgde.cli.common` holds
the shared console, error rendering and option parsing. :func:`main` is imported on first
use, so importing one command module does not build the whole application.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sgde.cli.app import main

__all__ = ["main"]


def __getattr__(name: str) -> Any:
    if name != "main":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from sgde.cli.app import main

    return main
