"""CLI commands (placeholder until implemented)."""

import typer


def register(app: typer.Typer) -> None:
    return None
