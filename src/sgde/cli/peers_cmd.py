"""Peer commands: ``sgde peers list``, ``sgde peers prepare [PEER...]``.

The peers (DSPy GEPA/MIPROv2, TextGrad) run in their own cached virtual environments;
``prepare`` builds them ahead of a bench run (the bench also builds them on first use).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from sgde.cli.common import JsonOpt, out_console
from sgde.cli.output import dumps_json
from sgde.errors import UsageError
from sgde.evaluation.peers.specs import PEERS, VenvSpec, get_peer
from sgde.evaluation.peers.venv import MARKER, default_peers_dir, ensure_venv

__all__ = ["register"]

peers_app = typer.Typer(
    name="peers",
    help="Prepare and list the peer optimisers (DSPy GEPA/MIPROv2, TextGrad) and their venvs.",
    no_args_is_help=True,
)

PeersDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--peers-dir",
        help="Directory of the peer venvs (default: $SGDE_PEERS_DIR or the user cache dir's "
        "sgde/peers).",
        show_default=False,
    ),
]


def _venvs(names: list[str]) -> list[VenvSpec]:
    out: list[VenvSpec] = []
    for name in names or list(PEERS):
        venv = get_peer(name).venv
        if venv not in out:
            out.append(venv)
    return out


@peers_app.command("list")
def list_peers(peers_dir: PeersDirOpt = None, as_json: JsonOpt = False) -> None:
    """Show each peer: its optimiser, pinned packages, venv and whether the venv is built."""
    root = peers_dir or default_peers_dir()
    rows: list[dict[str, Any]] = [
        {
            "name": spec.name,
            "optimizer": spec.optimizer,
            "requirements": list(spec.venv.requirements),
            "venv": str(root / spec.venv.name),
            "ready": (root / spec.venv.name / MARKER).is_file(),
            "settings": dict(spec.settings),
        }
        for spec in PEERS.values()
    ]
    if as_json:
        out_console.print(dumps_json(rows), highlight=False, markup=False, soft_wrap=True)
        return
    table = Table("peer", "optimizer", "packages", "venv", "ready")
    for row in rows:
        table.add_row(
            row["name"],
            row["optimizer"],
            escape(" ".join(row["requirements"])),
            escape(row["venv"]),
            "yes" if row["ready"] else "no (sgde peers prepare)",
        )
    out_console.print(table)


@peers_app.command("prepare")
def prepare(
    peers: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[PEER]...", help="Peers to prepare (default: all).", show_default=False
        ),
    ] = None,
    peers_dir: PeersDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Build the peers' venvs (pip install of the pinned packages; cached afterwards)."""
    names = list(peers or [])
    for name in names:
        if name not in PEERS:
            raise UsageError(f"unknown peer {name!r}", hint="peers: " + ", ".join(PEERS))
    results = []
    for spec in _venvs(names):
        if not as_json:
            pins = escape(" ".join(spec.requirements))
            out_console.print(f"preparing {spec.name} ({pins}) …", highlight=False)
        started = time.perf_counter()
        venv = ensure_venv(spec, root=peers_dir)
        results.append(
            {
                "venv": spec.name,
                "path": str(venv.path),
                "created": venv.created,
                "seconds": round(time.perf_counter() - started, 1),
                "versions": venv.versions(),
            }
        )
        if not as_json:
            state = "built" if venv.created else "already built"
            out_console.print(
                f"ok: {spec.name} {state} in {results[-1]['seconds']} s: {escape(str(venv.path))}",
                highlight=False,
            )
    if as_json:
        out_console.print(dumps_json(results), highlight=False, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``peers`` command group to ``app``."""
    app.add_typer(peers_app, name="peers")
