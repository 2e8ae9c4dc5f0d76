"""The models a plan runs with: the ones it records, overridden by the caller's.

A compiled plan records the student it was compiled for (``metadata.compile.student``, written
by :func:`sgde.compile`); any plan may also name models per role under ``metadata.models``
(``{student: local:smollm2-135m}``). ``sgde run``, ``sgde eval``, ``sgde serve`` and
:func:`run_sync` bind those by default, so a compiled plan brings its student along; a
``--model ROLE=URI`` (or ``models=``) that names a *different* model wins, with a warning.

:func:`run_sync` / :func:`run_plan_async` run a plan in one call (model hub, sandbox and
executor opened and closed for you).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sgde.errors import UsageError
from sgde.models.defaults import DEFAULT_STUDENT
from sgde.models.hub import ModelHub
from sgde.models.names import parse_model_name
from sgde.models.settings import ModelSettings
from sgde.plan import CodeNode, Plan
from sgde.planfile import load_plan
from sgde.runtime.backend import Backend
from sgde.runtime.calls import CodeRunner
from sgde.runtime.executor import Executor, ExecutorSettings, RunResult, required_roles
from sgde.runtime.sync import run_sync as _run_sync

__all__ = [
    "ModelChoice",
    "plan_model_targets",
    "recorded_models",
    "run_plan_async",
    "run_sync",
    "same_model",
]


def recorded_models(plan: Plan) -> dict[str, str]:
    """The models a plan records, per role.

    ``metadata.models`` (role -> ``provider:model``) wins over the compile provenance
    (``metadata.compile.student``). Values that are not non-empty strings are ignored.

    Args:
        plan: The plan.

    Returns:
        Role -> model name; empty for plans that record none.
    """
    found: dict[str, str] = {}
    compiled = plan.metadata.get("compile")
    if isinstance(compiled, Mapping):
        student = compiled.get("student")
        if isinstance(student, str) and student.strip():
            found["student"] = student.strip()
    explicit = plan.metadata.get("models")
    if isinstance(explicit, Mapping):
        for role, name in explicit.items():
            if isinstance(role, str) and isinstance(name, str) and name.strip():
                found[role] = name.strip()
    return found


def same_model(a: str, b: str) -> bool:
    """Whether two model names denote the same model (``local:x`` vs ``local:x`` etc.)."""
    if a.strip() == b.strip():
        return True
    try:
        pa, pb = parse_model_name(a), parse_model_name(b)
    except UsageError:
        return False
    return (pa.provider, pa.model, pa.base_url) == (pb.provider, pb.model, pb.base_url)


@dataclass(frozen=True)
class ModelChoice:
    """The models a run binds, and why.

    Attributes:
        targets: Role -> model name or backend, for every role the plan uses.
        recorded: The plan's recorded models (:func:`recorded_models`).
        from_plan: Roles bound to the plan's recorded model (the caller gave none).
        warnings: Overrides of a recorded model by a different one, and roles given that the
            plan does not use (ignored), as one sentence each.
    """

    targets: dict[str, str | Backend]
    recorded: dict[str, str] = field(default_factory=dict)
    from_plan: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()

    def names(self) -> dict[str, str]:
        """Role -> model name (a backend given as an object by its ``name``)."""
        return {r: t if isinstance(t, str) else t.name for r, t in self.targets.items()}


def plan_model_targets(
    plan: Plan, given: Mapping[str, str | Backend] | None = None, *, option: str = "--model"
) -> ModelChoice:
    """Decide the model of every role a plan uses: the caller's, else the plan's recorded one.

    Args:
        plan: The plan.
        given: Role -> model name (or backend) from the caller (``--model ROLE=URI``).
        option: How the caller passes models, for messages (``"--model"``, ``"models="``).

    Returns:
        The choice, with a warning for each recorded model overridden by a different one.

    Raises:
        UsageError: A role the plan uses has neither a given nor a recorded model.
    """
    given = dict(given or {})
    roles = sorted(required_roles(plan))
    recorded = recorded_models(plan)
    notes: list[str] = []
    targets: dict[str, str | Backend] = {}
    from_plan: set[str] = set()
    missing: list[str] = []
    for role in roles:
        chosen = given.get(role)
        kept = recorded.get(role)
        if chosen is None:
            if kept is None:
                missing.append(role)
                continue
            targets[role] = kept
            from_plan.add(role)
            continue
        targets[role] = chosen
        name = chosen if isinstance(chosen, str) else chosen.name
        if kept is not None and not same_model(name, kept):
            notes.append(
                f"plan '{plan.name}' was compiled for {role}={kept}; running it with "
                f"{role}={name} as {option} asks (accuracy may differ from the compile report)"
            )
    if missing:
        example = "=URI" if option == "--model" else ": NAME"
        raise UsageError(
            f"plan '{plan.name}' needs a model for role(s) {', '.join(missing)} and records none",
            hint=f"pass {option} {missing[0]}{example}, e.g. {missing[0]}={DEFAULT_STUDENT}, or "
            f"record one in the plan (metadata: {{models: {{{missing[0]}: {DEFAULT_STUDENT}}}}})",
        )
    unused = sorted(set(given) - set(roles))
    if unused:
        notes.append(f"plan '{plan.name}' does not use role(s) {', '.join(unused)}; ignoring them")
    return ModelChoice(targets, recorded, frozenset(from_plan), tuple(notes))


async def run_plan_async(
    plan: Plan | str | Path,
    inputs: Mapping[str, Any],
    *,
    models: Mapping[str, str | Backend] | None = None,
    seed: int = 0,
    model_settings: ModelSettings | None = None,
    executor_settings: ExecutorSettings | None = None,
    sandbox: CodeRunner | None = None,
) -> RunResult:
    """Run a plan once, opening (and closing) the models and the sandbox it needs.

    Args:
        plan: A :class:`~sgde.plan.Plan` or the path of a plan file.
        inputs: Values of the plan's inputs.
        models: Role -> model name or backend; roles left out use the plan's recorded model
            (a different one given here wins, with a :class:`UserWarning`).
        seed: Run seed.
        model_settings: Settings of the model hub (base URL, threads, budget, ...).
        executor_settings: Executor limits.
        sandbox: A running code sandbox to use (default: a one-worker ``SandboxPool`` for
            plans with code nodes, closed afterwards).

    Returns:
        Outputs, trace and status (node failures are recorded, not raised).

    Raises:
        UsageError: A role has no model, inputs are missing or invalid.
        PlanError: The plan does not load or validate.
    """
    if not isinstance(plan, Plan):
        plan = load_plan(plan)
    choice = plan_model_targets(plan, models, option="models=")
    for note in choice.warnings:
        warnings.warn(note, UserWarning, stacklevel=2)
    async with contextlib.AsyncExitStack() as stack:
        hub = await stack.enter_async_context(ModelHub(model_settings))
        bindings = hub.bind(choice.targets)
        runner = sandbox
        if runner is None and any(isinstance(n, CodeNode) for n in plan.nodes):
            from sgde.runtime.sandbox import SandboxPool

            runner = await stack.enter_async_context(SandboxPool(workers=1))
        executor = Executor(bindings, sandbox=runner, settings=executor_settings)
        return await executor.run(plan, inputs, seed=seed)


def run_sync(
    plan: Plan | str | Path,
    inputs: Mapping[str, Any],
    *,
    models: Mapping[str, str | Backend] | None = None,
    seed: int = 0,
    model_settings: ModelSettings | None = None,
    executor_settings: ExecutorSettings | None = None,
) -> RunResult:
    """Run a plan once, synchronously: ``sgde.run_sync("plan.yaml", {"question": "..."})``.

    Same arguments as :func:`run_plan_async` (which to await inside an event loop)::

        result = sgde.run_sync(plan, {"question": "..."}, models={"student": "local:smollm2-135m"})
        print(result.outputs, result.ok, result.trace.usage)

    Raises:
        UsageError: Called inside a running event loop, or see :func:`run_plan_async`.
    """
    return _run_sync(
        run_plan_async(
            plan,
            inputs,
            models=models,
            seed=seed,
            model_settings=model_settings,
            executor_settings=executor_settings,
        ),
        name="run_sync",
        use_instead="sgde.models.plan_models.run_plan_async(...)",
    )
