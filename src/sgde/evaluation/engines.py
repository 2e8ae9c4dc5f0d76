"""Where evaluation items run: in this process (default) or spread over a Ray cluster.

An :class:`Engine` runs a plan on dataset rows and returns scored
:class:`~sgde.evaluation.evaluate.ItemResult` objects. :class:`InProcessEngine` uses live
backends and a live sandbox pool. :class:`RayEngine` ships only serialisable recipes to its
workers — the plan as JSON, the rows, and a :class:`WorkerSpec` (model URIs, model settings,
sandbox limits) — and every worker builds its own backends and sandbox from them, so nothing
live (loaded models, processes, sockets) is pickled.

Ray is an optional extra: ``pip install "sgde[ray]"``.
"""

from __future__ import annotations

import asyncio
import importlib
import os
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from sgde.errors import UsageError
from sgde.evaluation.baselines.base import Method, Prepared
from sgde.evaluation.evaluate import (
    STUDENT_ROLE,
    EvalResult,
    ItemCallback,
    ItemResult,
    check_dataset,
    item_id,
    predict_items,
    run_items_inprocess,
    summarise,
)
from sgde.evaluation.sgde_method import resolve_method
from sgde.models import ModelHub, ModelSettings
from sgde.plan import plan_hash
from sgde.plan.model import Plan
from sgde.runtime.backend import Backend, ModelBindings
from sgde.runtime.executor import ExecutorSettings
from sgde.runtime.sandbox import SandboxLimits, SandboxPool
from sgde.task import TaskSpec

__all__ = [
    "ENGINE_NAMES",
    "RAY_INSTALL_HINT",
    "Engine",
    "EngineName",
    "InProcessEngine",
    "RayEngine",
    "WorkerSpec",
    "check_engine_name",
    "evaluate_with_engine",
    "import_ray",
    "make_engine",
    "run_worker_chunk",
    "run_worker_method_chunk",
    "with_ids",
]

RAY_INSTALL_HINT = 'pip install "sgde[ray]"   (or: pip install "ray>=2.9")'

EngineName = Literal["inprocess", "ray"]
"""The engines :func:`make_engine` builds."""
ENGINE_NAMES: tuple[EngineName, ...] = ("inprocess", "ray")

BindingsFactory = Callable[[Mapping[str, str], ModelSettings], Mapping[str, Backend]]


class Engine(Protocol):
    """Runs a plan on rows and scores each item."""

    name: str

    async def run_plan(
        self,
        plan: Plan,
        rows: Sequence[Mapping[str, Any]],
        *,
        seed: int = 0,
        keep_trace: str = "failures",
        on_item: ItemCallback | None = None,
    ) -> list[ItemResult]:
        """Run ``plan`` on ``rows`` (each carrying an ``id``) and return results in row order."""
        ...

    async def run_method(
        self,
        method: Method,
        prepared: Prepared,
        rows: Sequence[Mapping[str, Any]],
        *,
        method_options: Mapping[str, Any] | None = None,
        seed: int = 0,
        keep_trace: str = "failures",
        on_item: ItemCallback | None = None,
    ) -> list[ItemResult]:
        """Predict ``rows`` with a prepared method and score them, in row order."""
        ...


@dataclass(frozen=True)
class WorkerSpec:
    """A serialisable recipe for a worker's backends, sandbox and executor.

    Attributes:
        models: Role -> model URI, e.g. ``{"student": "local:smollm2-135m"}``.
        model_settings: :class:`~sgde.models.ModelSettings` fields (JSON-able).
        sandbox_workers: Sandbox worker processes per Ray worker.
        sandbox_limits: :class:`~sgde.runtime.sandbox.SandboxLimits` fields.
        executor_settings: :class:`~sgde.runtime.executor.ExecutorSettings` fields.
        concurrency: Items in flight at once inside one worker.
        bindings_factory: Optional ``"module:function"`` building role -> backend from
            ``(models, settings)`` instead of :class:`~sgde.models.ModelHub` (custom
            providers, test fakes). The module must be importable on the workers.
    """

    models: dict[str, str]
    model_settings: dict[str, Any] = field(default_factory=dict)
    sandbox_workers: int = 1
    sandbox_limits: dict[str, Any] = field(default_factory=dict)
    executor_settings: dict[str, Any] = field(default_factory=dict)
    concurrency: int = 1
    bindings_factory: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkerSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(**dict(data))


def _load_factory(dotted: str) -> BindingsFactory:
    module_name, sep, attr = dotted.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(
            f"bindings_factory {dotted!r} is not of the form 'module:function'",
            hint="e.g. 'mypackage.backends:make_bindings'",
        )
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(
            f"bindings_factory module {module_name!r} cannot be imported on this worker: {exc}",
            hint="install the module on every worker (or set PYTHONPATH in the runtime_env)",
        ) from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UsageError(f"bindings_factory {dotted!r} names no callable")
    result: BindingsFactory = factory
    return result


@asynccontextmanager
async def _worker_context(spec: WorkerSpec) -> AsyncIterator[tuple[ModelBindings, SandboxPool]]:
    """A worker's own sandbox and backends, built from the spec and closed afterwards."""
    settings = ModelSettings.model_validate(spec.model_settings)
    async with AsyncExitStack() as stack:
        sandbox = await stack.enter_async_context(
            SandboxPool(workers=spec.sandbox_workers, limits=SandboxLimits(**spec.sandbox_limits))
        )
        bindings: Mapping[str, Backend]
        if spec.bindings_factory:
            bindings = _load_factory(spec.bindings_factory)(dict(spec.models), settings)
            for backend in bindings.values():
                stack.push_async_callback(backend.aclose)
        else:
            hub = await stack.enter_async_context(ModelHub(settings))
            bindings = hub.bind(dict(spec.models))
        yield bindings, sandbox


async def _run_plan_chunk(
    plan_data: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    spec: WorkerSpec,
    seed: int,
    keep_trace: str,
) -> list[dict[str, Any]]:
    plan = Plan.model_validate(plan_data)
    async with _worker_context(spec) as (bindings, sandbox):
        items = await run_items_inprocess(
            plan,
            rows,
            bindings,
            sandbox=sandbox,
            seed=seed,
            concurrency=spec.concurrency,
            executor_settings=ExecutorSettings(**spec.executor_settings),
            keep_trace=keep_trace,
        )
    return [item.to_dict() for item in items]


async def _run_method_chunk(
    method_name: str,
    method_options: Mapping[str, Any],
    prepared_data: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    spec: WorkerSpec,
    seed: int,
    keep_trace: str,
) -> list[dict[str, Any]]:
    method = resolve_method(method_name, method_options)
    plan_data = prepared_data.get("plan")
    prepared = Prepared(
        method=method_name,
        plan=Plan.model_validate(plan_data) if plan_data is not None else None,
        report=dict(prepared_data.get("report") or {}),
        task=TaskSpec.from_metadata(prepared_data["task"]) if prepared_data.get("task") else None,
    )
    async with _worker_context(spec) as (bindings, sandbox):
        if STUDENT_ROLE not in bindings:
            raise UsageError("the worker spec binds no 'student' model", hint="set models.student")
        items = await predict_items(
            method,
            prepared,
            rows,
            student=bindings[STUDENT_ROLE],
            sandbox=sandbox,
            seed=seed,
            concurrency=spec.concurrency,
            keep_trace=keep_trace,
        )
    return [item.to_dict() for item in items]


def run_worker_chunk(
    plan_data: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    spec_data: Mapping[str, Any],
    seed: int = 0,
    keep_trace: str = "failures",
) -> list[dict[str, Any]]:
    """Run a plan on a chunk of rows from serialisable inputs only (a Ray task body).

    Builds the worker's own sandbox and backends from ``spec_data``, runs the plan, and
    returns the item results as dicts.
    """
    spec = WorkerSpec.from_dict(spec_data)
    return asyncio.run(_run_plan_chunk(plan_data, rows, spec, seed, keep_trace))


def run_worker_method_chunk(
    method_name: str,
    method_options: Mapping[str, Any],
    prepared_data: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    spec_data: Mapping[str, Any],
    seed: int = 0,
    keep_trace: str = "failures",
) -> list[dict[str, Any]]:
    """Predict a chunk of rows with a method rebuilt from its name, options and plan.

    The body of a Ray task: nothing live crosses the process boundary.
    """
    spec = WorkerSpec.from_dict(spec_data)
    return asyncio.run(
        _run_method_chunk(method_name, method_options, prepared_data, rows, spec, seed, keep_trace)
    )


class InProcessEngine:
    """Runs items in this process with live backends and sandbox (the default engine).

    Args:
        bindings: Role -> backend.
        sandbox: Sandbox pool for code nodes.
        concurrency: Items in flight at once.
        executor_settings: Executor timeouts and node concurrency.
    """

    name = "inprocess"

    def __init__(
        self,
        bindings: ModelBindings,
        *,
        sandbox: SandboxPool | None,
        concurrency: int = 1,
        executor_settings: ExecutorSettings | None = None,
    ) -> None:
        self.bindings = bindings
        self.sandbox = sandbox
        self.concurrency = concurrency
        self.executor_settings = executor_settings

    async def run_plan(
        self,
        plan: Plan,
        rows: Sequence[Mapping[str, Any]],
        *,
        seed: int = 0,
        keep_trace: str = "failures",
        on_item: ItemCallback | None = None,
    ) -> list[ItemResult]:
        """Run ``plan`` on ``rows`` in this process."""
        return await run_items_inprocess(
            plan,
            rows,
            self.bindings,
            sandbox=self.sandbox,
            seed=seed,
            concurrency=self.concurrency,
            executor_settings=self.executor_settings,
            keep_trace=keep_trace,
            on_item=on_item,
        )

    async def run_method(
        self,
        method: Method,
        prepared: Prepared,
        rows: Sequence[Mapping[str, Any]],
        *,
        method_options: Mapping[str, Any] | None = None,
        seed: int = 0,
        keep_trace: str = "failures",
        on_item: ItemCallback | None = None,
    ) -> list[ItemResult]:
        """Predict ``rows`` with ``method`` in this process."""
        if STUDENT_ROLE not in self.bindings:
            raise UsageError("no 'student' model is bound", hint="bind the 'student' role")
        return await predict_items(
            method,
            prepared,
            rows,
            student=self.bindings[STUDENT_ROLE],
            sandbox=self.sandbox,
            seed=seed,
            concurrency=self.concurrency,
            keep_trace=keep_trace,
            on_item=on_item,
        )


def import_ray() -> Any:
    """Import ``ray`` or raise a :class:`UsageError` with the install line."""
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        raise UsageError(
            "the Ray engine needs the optional package 'ray', which is not installed",
            hint=RAY_INSTALL_HINT,
        ) from exc


class RayEngine:
    """Spreads evaluation items over a Ray cluster (or a local Ray started on demand).

    Each Ray task gets a chunk of rows, the plan as JSON and a :class:`WorkerSpec`, builds its
    own backends and sandbox, and returns item results as dicts.

    Args:
        spec: How workers build their backends and sandbox.
        address: Ray cluster address (``"auto"``, ``"ray://host:10001"``); ``None`` connects
            to ``$RAY_ADDRESS`` when set, else starts a local Ray.
        chunks: Tasks per evaluation; default: the cluster's CPU count.
        num_cpus_per_task: CPUs reserved per task (a local llama.cpp model wants its threads).
        init_kwargs: Extra ``ray.init`` arguments (e.g. ``runtime_env``, ``num_cpus``).
    """

    name = "ray"

    def __init__(
        self,
        spec: WorkerSpec,
        *,
        address: str | None = None,
        chunks: int | None = None,
        num_cpus_per_task: float = 1.0,
        init_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self._ray = import_ray()
        if chunks is not None and chunks < 1:
            raise UsageError(f"chunks must be >= 1, not {chunks}")
        self.spec = spec
        self.address = address
        self.chunks = chunks
        self.num_cpus_per_task = num_cpus_per_task
        self.init_kwargs = dict(init_kwargs or {})

    def _ensure_init(self) -> None:
        ray = self._ray
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
        kwargs.update(self.init_kwargs)
        address = self.address or os.environ.get("RAY_ADDRESS")
        if address:
            kwargs["address"] = address
        else:
            kwargs.setdefault("include_dashboard", False)
        ray.init(**kwargs)

    def _n_chunks(self, n_rows: int) -> int:
        if self.chunks is not None:
            wanted = self.chunks
        else:
            cpus = float(self._ray.cluster_resources().get("CPU", 1.0))
            wanted = max(1, int(cpus // max(self.num_cpus_per_task, 1e-9)))
        return max(1, min(wanted, n_rows))

    async def _dispatch(
        self,
        body: Callable[..., list[dict[str, Any]]],
        head: tuple[Any, ...],
        rows: Sequence[Mapping[str, Any]],
        tail: tuple[Any, ...],
        on_item: ItemCallback | None,
    ) -> list[ItemResult]:
        """Run ``body(*head, chunk, *tail)`` as Ray tasks over chunks of ``rows``."""
        if not rows:
            return []
        self._ensure_init()
        task = self._ray.remote(num_cpus=self.num_cpus_per_task)(body)
        n = self._n_chunks(len(rows))
        indexed = [dict(row) for row in rows]
        groups = [list(range(i, len(indexed), n)) for i in range(n)]
        refs = [task.remote(*head, [indexed[i] for i in group], *tail) for group in groups]
        futures = {
            asyncio.wrap_future(ref.future()): group
            for ref, group in zip(refs, groups, strict=True)
        }
        results: list[ItemResult | None] = [None] * len(indexed)
        pending: set[asyncio.Future[Any]] = set(futures)
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for fut in done:
                    for index, data in zip(futures[fut], fut.result(), strict=True):
                        item = ItemResult.from_dict(data)
                        results[index] = item
                        if on_item is not None:
                            on_item(item)
        except BaseException:
            for ref in refs:
                self._ray.cancel(ref)
            await asyncio.gather(*pending, return_exceptions=True)
            raise
        return [r for r in results if r is not None]

    async def run_plan(
        self,
        plan: Plan,
        rows: Sequence[Mapping[str, Any]],
        *,
        seed: int = 0,
        keep_trace: str = "failures",
        on_item: ItemCallback | None = None,
    ) -> list[ItemResult]:
        """Run ``plan`` on ``rows`` over Ray; ``on_item`` fires as each chunk returns."""
        return await self._dispatch(
            run_worker_chunk,
            (plan.model_dump(mode="json"),),
            rows,
            (self.spec.to_dict(), seed, keep_trace),
            on_item,
        )

    async def run_method(
        self,
        method: Method,
        prepared: Prepared,
        rows: Sequence[Mapping[str, Any]],
        *,
        method_options: Mapping[str, Any] | None = None,
        seed: int = 0,
        keep_trace: str = "failures",
        on_item: ItemCallback | None = None,
    ) -> list[ItemResult]:
        """Predict ``rows`` over Ray; workers rebuild the method from its name and plan.

        Raises:
            UsageError: the prepared method holds live state (e.g. a DSPy program) that
                cannot be shipped to workers.
        """
        if prepared.state is not None:
            raise UsageError(
                f"method {method.name!r} keeps live state that cannot be sent to Ray workers",
                hint="evaluate this method with --engine inprocess",
            )
        return await self._dispatch(
            run_worker_method_chunk,
            (method.name, dict(method_options or {}), prepared.to_dict()),
            rows,
            (self.spec.to_dict(), seed, keep_trace),
            on_item,
        )


def check_engine_name(name: str) -> EngineName:
    """``name`` as an :data:`EngineName`.

    Raises:
        UsageError: when it names no engine.
    """
    for known in ENGINE_NAMES:
        if name == known:
            return known
    raise UsageError(
        f"unknown engine {name!r}", hint="use --engine " + " or --engine ".join(ENGINE_NAMES)
    )


def make_engine(
    name: str,
    *,
    bindings: ModelBindings | None,
    sandbox: SandboxPool | None,
    spec: WorkerSpec,
    concurrency: int = 1,
    executor_settings: ExecutorSettings | None = None,
    ray_address: str | None = None,
) -> Engine:
    """Build the engine called ``name`` (``"inprocess"`` or ``"ray"``).

    Args:
        name: The engine.
        bindings: Live role -> backend bindings (the in-process engine needs them; Ray
            workers build their own from ``spec``).
        sandbox: Sandbox pool of the in-process engine.
        spec: How Ray workers build their backends and sandbox.
        concurrency: Items in flight at once (in process).
        executor_settings: Executor timeouts and node concurrency (in process).
        ray_address: Ray cluster address (``None``: ``$RAY_ADDRESS`` or a local Ray).

    Raises:
        UsageError: unknown engine name, ``"ray"`` without Ray installed, or
            ``"inprocess"`` without bindings.
    """
    if check_engine_name(name) == "ray":
        return RayEngine(spec, address=ray_address)
    if bindings is None:
        raise UsageError("the in-process engine needs model bindings", hint="bind the roles first")
    return InProcessEngine(
        bindings, sandbox=sandbox, concurrency=concurrency, executor_settings=executor_settings
    )


def with_ids(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``rows`` that each carry an ``id`` (the row index when absent)."""
    return [{**row, "id": item_id(row, index)} for index, row in enumerate(rows)]


async def evaluate_with_engine(
    plan: Plan,
    rows: Sequence[Mapping[str, Any]],
    engine: Engine,
    *,
    seed: int = 0,
    keep_trace: str = "failures",
    on_item: ItemCallback | None = None,
    name: str | None = None,
) -> EvalResult:
    """Check the rows, run them on ``engine`` and aggregate into an :class:`EvalResult`."""
    check_dataset(plan, rows)
    items = await engine.run_plan(
        plan, with_ids(rows), seed=seed, keep_trace=keep_trace, on_item=on_item
    )
    return summarise(
        items, name=name or plan.name, plan_hash=plan_hash(plan), extra={"engine": engine.name}
    )
