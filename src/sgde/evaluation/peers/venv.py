"""Isolated, cached virtual environments for the peers.

Each :class:`~sgde.evaluation.peers.specs.VenvSpec` gets one venv under the peers cache
(``$SGDE_PEERS_DIR``, else the user cache dir ``…/sgde/peers``), named after its pins. It is
built once — into a temporary directory, checked by importing the peer, then renamed into
place — under a file lock, so concurrent runs neither rebuild nor see a half-built venv.
A ``sgde-venv.json`` marker records the pins and ``pip freeze``; a venv whose marker does
not match its spec is rebuilt.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from sgde.errors import UsageError
from sgde.evaluation.peers.specs import VenvSpec

__all__ = ["MARKER", "PeerVenv", "default_peers_dir", "ensure_venv", "venv_python"]

MARKER = "sgde-venv.json"
ENV_VAR = "SGDE_PEERS_DIR"

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def default_peers_dir() -> Path:
    """``$SGDE_PEERS_DIR`` or the user cache dir's ``sgde/peers``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return platformdirs.user_cache_path("sgde") / "peers"


def venv_python(root: Path) -> Path:
    """The interpreter of the venv at ``root``."""
    return root / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


@dataclass(frozen=True)
class PeerVenv:
    """A ready venv.

    Attributes:
        path: Its directory.
        python: Its interpreter.
        freeze: ``pip freeze`` of the venv (every installed version, for the results).
        created: Whether this call built it.
        seconds: Time spent building (0 when cached).
    """

    path: Path
    python: Path
    freeze: tuple[str, ...]
    created: bool
    seconds: float

    def versions(self) -> dict[str, str]:
        """``{package: version}`` from the freeze (lower-case names)."""
        out: dict[str, str] = {}
        for line in self.freeze:
            name, sep, version = line.partition("==")
            if sep:
                out[name.strip().lower()] = version.strip()
        return out


def _run(cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False)


def _marker(root: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((root / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _ready(root: Path, spec: VenvSpec) -> dict[str, Any] | None:
    data = _marker(root)
    if data is None or list(data.get("requirements") or []) != list(spec.requirements):
        return None
    return data if venv_python(root).exists() else None


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _check(result: subprocess.CompletedProcess[str], what: str, spec: VenvSpec) -> None:
    if result.returncode != 0:
        tail = (result.stderr or result.stdout or "").strip()[-1500:]
        raise UsageError(
            f"could not {what} for peer venv {spec.name!r} (exit {result.returncode}): {tail}",
            hint="check network access to PyPI, then rerun `sgde peers prepare`",
        )


def ensure_venv(
    spec: VenvSpec,
    *,
    root: Path | None = None,
    base_python: str | None = None,
    run: Runner = _run,
) -> PeerVenv:
    """The venv of ``spec``, built on first use.

    Args:
        spec: Which venv.
        root: Peers cache dir (default :func:`default_peers_dir`).
        base_python: Interpreter that creates the venv (default: the running one).
        run: Runs a command (tests inject a fake).

    Raises:
        UsageError: venv creation, ``pip install`` or the import check failed (the message
            carries pip's last lines).
    """
    base = root if root is not None else default_peers_dir()
    target = base / spec.name
    with _lock(base / f".{spec.name}.lock"):
        data = _ready(target, spec)
        if data is not None:
            return PeerVenv(
                target, venv_python(target), tuple(data.get("freeze") or ()), False, 0.0
            )
        started = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=base))
        try:
            _check(run([base_python or sys.executable, "-m", "venv", str(tmp)]), "create", spec)
            py = str(venv_python(tmp))
            pip = [py, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
            _check(run([*pip, *spec.requirements]), "pip install", spec)
            _check(run([py, "-c", spec.check]), "import the peer", spec)
            frozen = run([py, "-m", "pip", "freeze", "--disable-pip-version-check"])
            _check(frozen, "list the packages", spec)
            freeze = tuple(line for line in frozen.stdout.splitlines() if "==" in line)
            marker = {"requirements": list(spec.requirements), "freeze": list(freeze)}
            (tmp / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
            if target.exists():
                shutil.rmtree(target)
            # venv scripts hard-code their directory: the interpreter is called by path
            # (``bin/python``), which survives the rename; console scripts are not used.
            tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return PeerVenv(target, venv_python(target), freeze, True, time.perf_counter() - started)
