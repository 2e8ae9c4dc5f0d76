"""Per-iteration checkpoints: plan YAML + state JSON, written atomically.

Layout of ``checkpoint_dir``::

    plan.yaml     the current (best accepted) plan
    state.json    schema_version, iteration, loss, history, tried edits, supervision,
                  report rows, usage, seeds — everything needed to continue

Each file is written to a temporary file in the same directory and renamed over the old one,
so a crash leaves either the previous or the new checkpoint, never a torn one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sgde.errors import CompileError, PlanError
from sgde.plan.model import Plan
from sgde.planfile import dump_plan, loads_plan
from sgde.planfile.files import write_text_atomic

__all__ = ["CHECKPOINT_VERSION", "Checkpoint"]

CHECKPOINT_VERSION = 2
"""2: typed edit records in ``history``, the task spec, candidate-source solutions."""


class Checkpoint:
    """Saves and loads the compiler state in one directory."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    @property
    def plan_path(self) -> Path:
        return self.directory / "plan.yaml"

    @property
    def state_path(self) -> Path:
        return self.directory / "state.json"

    def exists(self) -> bool:
        """Whether a complete checkpoint is present."""
        return self.plan_path.is_file() and self.state_path.is_file()

    def save(self, plan: Plan, state: dict[str, Any]) -> None:
        """Write the plan, then the state (the state names the iteration it completes).

        Raises:
            UsageError: when the checkpoint directory cannot be written.
        """
        write_text_atomic(
            self.plan_path, dump_plan(plan), what="checkpoint plan", make_parents=True
        )
        payload = {"schema_version": CHECKPOINT_VERSION, **state}
        write_text_atomic(
            self.state_path,
            json.dumps(payload, indent=1, default=str) + "\n",
            what="checkpoint state",
            make_parents=True,
        )

    def load(self) -> tuple[Plan, dict[str, Any]]:
        """Read the checkpoint.

        Raises:
            CompileError: when it is missing, unreadable or from another version.
        """
        if not self.exists():
            raise CompileError(
                f"no checkpoint in {self.directory}",
                hint="run without --resume to start a new compile",
            )
        try:
            state = json.loads(self.state_path.read_text("utf-8"))
            plan = loads_plan(self.plan_path.read_text("utf-8"), source=str(self.plan_path))
        except (ValueError, OSError, PlanError) as exc:
            raise CompileError(
                f"the checkpoint in {self.directory} is unreadable: {exc}",
                hint="delete the directory and compile again without --resume",
            ) from exc
        version = state.get("schema_version") if isinstance(state, dict) else None
        if version != CHECKPOINT_VERSION:
            older = isinstance(version, int) and version < CHECKPOINT_VERSION
            raise CompileError(
                f"the checkpoint in {self.directory} has format version {version!r}; this "
                f"sgde reads version {CHECKPOINT_VERSION}"
                + (" (it was written by an older sgde and cannot be resumed)" if older else ""),
                hint="compile again without --resume (or delete the directory)",
            )
        return plan, state
