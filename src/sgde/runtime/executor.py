"""The plan executor: runs a plan's DAG over bound models and a sandbox, tracing every node.

Execution model:

* Each executable node (every node except those wrapped by a consensus node) is an asyncio
  task that starts as soon as the nodes it depends on are done, so independent nodes run
  concurrently. Model and sandbox calls share one semaphore of
  :attr:`ExecutorSettings.max_concurrency` per run (per batch in :meth:`Executor.run_batch`).
* A node that fails is recorded (``status="error"`` with the error's type and message), its
  dependants are recorded as ``"skipped"``, and the run is not ok. Failures never raise out
  of :meth:`Executor.run`, except misuse (:class:`~sgde.errors.UsageError`: missing inputs,
  unbound roles, no sandbox for code), invalid plans (:class:`~sgde.errors.PlanError`) and
  :class:`~sgde.errors.BudgetExceeded`, which stops the run.
* LLM nodes render ``system`` and ``prompt`` (jinja2, sandboxed, strict) over their
  resolved inputs (:class:`~sgde.runtime.messages.MessageBuilder`). With an
  ``output_schema``, the schema is sent as ``json_schema`` when the backend can constrain
  output (``capabilities.json_schema`` or ``json_object``); unless it can enforce the schema
  itself, a short instruction describing the fields is appended to the prompt. Output is
  parsed by :func:`~sgde.runtime.parsing.parse_json_output`; without a schema the node
  yields ``{"text": raw}``.
* Consensus nodes sample the wrapped llm node ``n`` times at the consensus temperature (or
  once per prompt-variant member, see :func:`~sgde.runtime.consensus.fan_out`) with seeds
  derived from (run seed, wrapped node id, sample index), concurrently, and vote per
  field (:func:`~sgde.runtime.consensus.vote`). A sample that fails to parse is an invalid
  vote; no valid sample is a node error. Samples use the wrapped node's timeout and retries
  unless the consensus node sets its own.
* Code nodes call ``run(**inputs)`` in the sandbox; the returned dict's keys are the fields.

For deterministic backends a fixed seed gives identical outputs and traces (up to timings).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import jsonschema.protocols

from sgde.errors import (
    BudgetExceeded,
    ExecutionError,
    SgdeError,
    UsageError,
)
from sgde.plan.model import CodeNode, ConsensusNode, LlmNode, Plan
from sgde.plan.refs import Ref, parse_ref
from sgde.runtime.backend import ModelBindings, Usage
from sgde.runtime.calls import CallOutcome, CallPolicy, CodeRunner, call_code, call_model
from sgde.runtime.consensus import fan_out, vote
from sgde.runtime.inputs import coerce_inputs
from sgde.runtime.messages import MessageBuilder
from sgde.runtime.observe import ExecutionObserver, RunInfo, notify
from sgde.runtime.parsing import compile_output_schema
from sgde.runtime.schedule import Prepared, prepare, required_roles
from sgde.runtime.trace import NodeTrace, RunTrace, SampleTrace, error_info

__all__ = ["Executor", "ExecutorSettings", "OnResult", "RunResult", "required_roles"]

_PREPARED_CACHE = 32

OnResult = Callable[[int, "RunResult"], None]
"""Batch callback: ``(row index, result)``, called as each row finishes."""


@dataclass(frozen=True)
class ExecutorSettings:
    """Executor limits and policies.

    Attributes:
        max_concurrency: Model/sandbox calls in flight at once (per run or batch).
        llm_timeout_s: Default per-attempt timeout of a model call (node ``timeout_s`` wins).
        code_timeout_s: Default timeout of a code node (node ``timeout_s`` wins).
        retry_backoff_s: Delay before the first retry; doubles per retry.
        max_backoff_s: Upper bound of one retry delay.
        batch_concurrency: Rows in flight in :meth:`Executor.run_batch` (default:
            ``max_concurrency``).
        validate_plan: Validate plans (``sgde.planfile.check_plan``) before running them.
    """

    max_concurrency: int = 4
    llm_timeout_s: float = 300.0
    code_timeout_s: float = 10.0
    retry_backoff_s: float = 0.2
    max_backoff_s: float = 5.0
    batch_concurrency: int | None = None
    validate_plan: bool = True

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise UsageError(f"max_concurrency must be at least 1, got {self.max_concurrency}")
        if self.batch_concurrency is not None and self.batch_concurrency < 1:
            raise UsageError(f"batch_concurrency must be at least 1, got {self.batch_concurrency}")
        for name in ("llm_timeout_s", "code_timeout_s"):
            if getattr(self, name) <= 0:
                raise UsageError(f"{name} must be positive, got {getattr(self, name)}")
        if self.retry_backoff_s < 0 or self.max_backoff_s < 0:
            raise UsageError("retry backoff delays must not be negative")


@dataclass
class RunResult:
    """Outcome of one plan run.

    Attributes:
        outputs: The plan outputs that resolved (all of them when ``ok``).
        trace: The full trace.
        ok: Whether every node and output succeeded.
        error: The first failure, as text, when not ok.
    """

    outputs: dict[str, Any]
    trace: RunTrace
    ok: bool
    error: str | None = None


@dataclass
class _RunState:
    prep: Prepared
    inputs: dict[str, Any]
    seed: int
    semaphore: asyncio.Semaphore
    t0: float
    run: RunInfo
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    traces: dict[str, NodeTrace] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


class Executor:
    """Runs plans with bound model backends and a code sandbox.

    Args:
        bindings: Role name -> backend (e.g. ``{"student": backend}``).
        sandbox: Runs code nodes (:class:`sgde.runtime.sandbox.SandboxPool`); may be None
            for plans without code nodes.
        settings: Limits and policies (defaults: :class:`ExecutorSettings`).
        observer: Told when runs and nodes start and end (telemetry); see
            :mod:`sgde.runtime.observe`.
    """

    def __init__(
        self,
        bindings: ModelBindings,
        *,
        sandbox: CodeRunner | None,
        settings: ExecutorSettings | None = None,
        observer: ExecutionObserver | None = None,
    ) -> None:
        self._bindings = dict(bindings)
        self._observer = observer
        self._sandbox = sandbox
        self._settings = settings or ExecutorSettings()
        self._messages = MessageBuilder()
        self._prepared: dict[int, Prepared] = {}

    @property
    def settings(self) -> ExecutorSettings:
        """The executor's settings."""
        return self._settings

    # ----------------------------------------------------------------- preparation

    def _prepare(self, plan: Plan) -> Prepared:
        cached = self._prepared.get(id(plan))
        if cached is not None and cached.plan is plan:
            return cached
        prep = prepare(plan, validate=self._settings.validate_plan)
        if len(self._prepared) >= _PREPARED_CACHE:
            self._prepared.pop(next(iter(self._prepared)))
        self._prepared[id(plan)] = prep
        return prep

    def _check_ready(self, prep: Prepared) -> None:
        missing = sorted(prep.roles - set(self._bindings))
        if missing:
            bound = ", ".join(sorted(self._bindings)) or "none"
            raise UsageError(
                f"plan '{prep.plan.name}' uses model role(s) {', '.join(missing)} that are not "
                f"bound (bound roles: {bound})",
                hint=f"bind each role with --model ROLE=URI, e.g. --model {missing[0]}="
                "local:smollm2-135m",
            )
        if prep.code_nodes and self._sandbox is None:
            raise UsageError(
                f"plan '{prep.plan.name}' has code nodes ({', '.join(prep.code_nodes)}) but the "
                "executor has no sandbox",
                hint="create the executor with sandbox=SandboxPool()",
            )

    # ----------------------------------------------------------------- public API

    async def run(self, plan: Plan, inputs: Mapping[str, Any], *, seed: int = 0) -> RunResult:
        """Run a plan once.

        Args:
            plan: The plan.
            inputs: Values for the plan's inputs (extra keys are ignored).
            seed: Run seed; request seeds are derived from it.

        Returns:
            Outputs, trace and status. Node failures are recorded, not raised.

        Raises:
            UsageError: missing/invalid inputs, unbound roles, or code nodes without sandbox.
            PlanError: the plan does not validate.
            BudgetExceeded: a backend's budget ran out (the run stops).
        """
        prep = self._prepare(plan)
        self._check_ready(prep)
        values = coerce_inputs(plan, inputs)
        semaphore = asyncio.Semaphore(self._settings.max_concurrency)
        return await self._execute(prep, values, seed, semaphore)

    async def run_batch(
        self,
        plan: Plan,
        rows: Iterable[Mapping[str, Any]],
        *,
        seed: int = 0,
        on_result: OnResult | None = None,
    ) -> list[RunResult]:
        """Run a plan over many rows, several rows at a time.

        Every row is checked before any runs. All rows share one call semaphore; each row
        uses ``seed`` (so a row's result does not depend on its position).

        Args:
            plan: The plan.
            rows: Input rows keyed by plan input names (extra keys ignored).
            seed: Run seed for every row.
            on_result: Called with ``(row index, result)`` as each row finishes.

        Returns:
            Results in row order.

        Raises:
            UsageError: a row lacks an input or has an invalid one (names the 1-based row).
        """
        prep = self._prepare(plan)
        self._check_ready(prep)
        values: list[dict[str, Any]] = []
        for number, row in enumerate(rows, start=1):
            try:
                values.append(coerce_inputs(plan, row))
            except UsageError as exc:
                raise UsageError(f"row {number}: {exc.message}", hint=exc.hint) from exc
        semaphore = asyncio.Semaphore(self._settings.max_concurrency)
        results: list[RunResult | None] = [None] * len(values)
        indices = iter(range(len(values)))

        async def worker() -> None:
            for index in indices:
                result = await self._execute(prep, values[index], seed, semaphore)
                results[index] = result
                if on_result is not None:
                    on_result(index, result)

        width = self._settings.batch_concurrency or self._settings.max_concurrency
        workers = [asyncio.ensure_future(worker()) for _ in range(min(width, len(values)))]
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        return [r for r in results if r is not None]

    # ----------------------------------------------------------------- one run

    async def _execute(
        self,
        prep: Prepared,
        inputs: dict[str, Any],
        seed: int,
        semaphore: asyncio.Semaphore,
    ) -> RunResult:
        started_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        run = RunInfo(uuid.uuid4().hex, prep.plan.name, prep.plan_hash, seed)
        state = _RunState(prep, inputs, seed, semaphore, time.perf_counter(), run)
        observer = self._observer
        if observer is not None:
            notify(observer.on_run_start, run)
        tasks: dict[str, asyncio.Task[None]] = {}
        for nid in prep.order:
            deps = [tasks[d] for d in prep.deps[nid]]
            tasks[nid] = asyncio.ensure_future(self._node_task(state, nid, deps))
        try:
            await asyncio.gather(*tasks.values())
        except BaseException as exc:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)
            if observer is not None:
                notify(observer.on_run_end, run, None, exc)
            raise
        result = self._finish(state, started_at)
        if observer is not None:
            notify(observer.on_run_end, run, result, None)
        return result

    def _finish(self, state: _RunState, started_at: str) -> RunResult:
        plan = state.prep.plan
        outputs: dict[str, Any] = {}
        output_problems: list[str] = []
        for name, ref_text in plan.outputs.items():
            try:
                ref = parse_ref(ref_text)
            except ValueError as exc:
                output_problems.append(f"output '{name}': {exc}")
                continue
            source = state.prep.alias.get(ref.source, ref.source)
            source_trace = state.traces.get(source)
            if source_trace is not None and source_trace.status != "ok":
                continue  # the node's own failure is the error to report
            try:
                outputs[name] = self._lookup(state, ref, what=f"output '{name}'")
            except ExecutionError as exc:
                output_problems.append(str(exc))
        traces = [state.traces[n.id] for n in plan.nodes if n.id in state.traces]
        failed = [t for t in traces if t.status == "error"]
        skipped = sum(1 for t in traces if t.status == "skipped")
        error: str | None = None
        if failed:
            first = failed[0]
            message = state.errors.get(first.node_id, "failed")
            prefix = f"node '{first.node_id}'"
            error = message if message.startswith(prefix) else f"{prefix}: {message}"
            if len(failed) > 1:
                error += f" (and {len(failed) - 1} more failed node(s))"
            if skipped:
                error += f"; {skipped} dependent node(s) skipped"
        elif output_problems:
            error = output_problems[0]
        ok = error is None
        usage = Usage()
        by_role: dict[str, Usage] = {}
        for t in traces:
            usage = usage + t.usage
            if t.role is not None:
                by_role[t.role] = by_role.get(t.role, Usage()) + t.usage
        trace = RunTrace(
            run_id=state.run.run_id,
            plan_name=plan.name,
            plan_hash=state.prep.plan_hash,
            seed=state.seed,
            inputs=dict(state.inputs),
            outputs=dict(outputs),
            ok=ok,
            error=error,
            nodes=traces,
            usage=usage,
            usage_by_role=by_role,
            latency_s=time.perf_counter() - state.t0,
            started_at=started_at,
        )
        return RunResult(outputs=outputs, trace=trace, ok=ok, error=error)

    async def _node_task(
        self, state: _RunState, node_id: str, deps: list[asyncio.Task[None]]
    ) -> None:
        if deps:
            await asyncio.gather(*deps)
        node = state.prep.plan.node(node_id)
        trace = NodeTrace(node_id=node_id, kind=node.kind, started_s=time.perf_counter() - state.t0)
        not_ok = [d for d in state.prep.deps[node_id] if state.traces[d].status != "ok"]
        if not_ok:
            trace.status = "skipped"
            trace.error = {
                "type": "Skipped",
                "message": "not run: "
                + ", ".join(f"'{d}' {state.traces[d].status}" for d in not_ok),
            }
            state.traces[node_id] = trace
            return
        started = time.perf_counter()
        if self._observer is not None:
            notify(self._observer.on_node_start, state.run, node_id, node.kind)
        try:
            if isinstance(node, LlmNode):
                await self._run_llm(state, node, trace)
            elif isinstance(node, CodeNode):
                await self._run_code(state, node, trace)
            else:
                await self._run_consensus(state, node, trace)
            trace.status = "ok"
        except BudgetExceeded:
            raise
        except Exception as exc:
            trace.status = "error"
            trace.error = error_info(exc)
            text = str(exc) if isinstance(exc, SgdeError) else f"{type(exc).__name__}: {exc}"
            state.errors[node_id] = text
        trace.latency_s = time.perf_counter() - started
        state.traces[node_id] = trace
        if self._observer is not None:
            notify(self._observer.on_node_end, state.run, trace)

    # ----------------------------------------------------------------- inputs

    def _lookup(self, state: _RunState, ref: Ref, *, what: str) -> Any:
        if ref.is_input:
            if ref.field not in state.inputs:
                raise ExecutionError(f"{what} refers to unknown plan input '{ref.field}'")
            return state.inputs[ref.field]
        source = state.prep.alias.get(ref.source, ref.source)
        fields = state.results.get(source)
        if fields is None:
            raise ExecutionError(f"{what} refers to node '{ref.source}', which has no output")
        if ref.field not in fields:
            produced = ", ".join(fields) or "no fields"
            raise ExecutionError(
                f"{what} refers to '{ref}', but node '{source}' produced {produced}",
                hint=f"make node '{source}' yield '{ref.field}' or fix the reference",
            )
        return fields[ref.field]

    def _resolve(
        self, state: _RunState, node_id: str, mapping: Mapping[str, str]
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for param, ref_text in mapping.items():
            try:
                ref = parse_ref(ref_text)
                values[param] = self._lookup(state, ref, what=f"input '{param}'")
            except ValueError as exc:
                raise ExecutionError(f"input '{param}': {exc}", node_id=node_id) from exc
            except ExecutionError as exc:
                raise ExecutionError(exc.message, node_id=node_id, hint=exc.hint) from exc
        return values

    # ----------------------------------------------------------------- llm + consensus

    def _validator(self, state: _RunState, node: LlmNode) -> jsonschema.protocols.Validator | None:
        """The node's output-schema validator, built once per prepared plan."""
        if node.output_schema is None:
            return None
        validator = state.prep.validators.get(node.id)
        if validator is None:
            validator = compile_output_schema(node.output_schema, node_id=node.id)
            state.prep.validators[node.id] = validator
        return validator

    def _llm_policy(self, timeout_s: float | None, retries: int) -> CallPolicy:
        s = self._settings
        return CallPolicy(
            timeout_s=timeout_s or s.llm_timeout_s,
            retries=retries,
            backoff_s=s.retry_backoff_s,
            max_backoff_s=s.max_backoff_s,
        )

    async def _run_llm(self, state: _RunState, node: LlmNode, trace: NodeTrace) -> None:
        backend = self._bindings[node.model]
        trace.role, trace.model = node.model, backend.name
        trace.inputs = self._resolve(state, node.id, node.inputs)
        caps = backend.capabilities
        messages = self._messages.messages(node, trace.inputs, caps)
        trace.messages = [m.to_dict() for m in messages]
        outcome = await call_model(
            backend,
            node_id=node.id,
            messages=messages,
            schema=node.output_schema,
            send_schema=node.output_schema is not None and (caps.json_schema or caps.json_object),
            temperature=node.temperature,
            max_tokens=node.max_tokens,
            top_p=node.top_p,
            run_seed=state.seed,
            index=0,
            policy=self._llm_policy(node.timeout_s, node.retries),
            retry_parse=True,
            semaphore=state.semaphore,
            validator=self._validator(state, node),
        )
        trace.raw_output, trace.attempts, trace.usage = (
            outcome.raw_output,
            outcome.attempts,
            outcome.usage,
        )
        if outcome.error is not None or outcome.output is None:
            raise outcome.error or ExecutionError("model call produced no output", node_id=node.id)
        trace.output = outcome.output
        state.results[node.id] = outcome.output

    async def _run_consensus(self, state: _RunState, node: ConsensusNode, trace: NodeTrace) -> None:
        wrapped = state.prep.plan.node(node.of)
        if not isinstance(wrapped, LlmNode):
            raise ExecutionError(
                f"consensus can only sample an llm node, but '{node.of}' is a {wrapped.kind} node",
                node_id=node.id,
            )
        backend = self._bindings[wrapped.model]
        trace.role, trace.model, trace.wrapped = wrapped.model, backend.name, wrapped.id
        trace.inputs = self._resolve(state, node.id, wrapped.inputs)
        caps = backend.capabilities
        samples = fan_out(node, wrapped)
        asked = [self._messages.messages(s.node, trace.inputs, caps) for s in samples]
        trace.messages = [m.to_dict() for m in asked[0]]
        policy = self._llm_policy(
            node.timeout_s or wrapped.timeout_s, node.retries or wrapped.retries
        )
        validator = self._validator(state, wrapped)
        outcomes: list[CallOutcome] = await asyncio.gather(
            *(
                call_model(
                    backend,
                    node_id=wrapped.id,
                    messages=messages,
                    schema=wrapped.output_schema,
                    send_schema=wrapped.output_schema is not None
                    and (caps.json_schema or caps.json_object),
                    temperature=sample.temperature,
                    max_tokens=wrapped.max_tokens,
                    top_p=wrapped.top_p,
                    run_seed=state.seed,
                    index=i,
                    policy=policy,
                    retry_parse=False,
                    semaphore=state.semaphore,
                    validator=validator,
                )
                for i, (sample, messages) in enumerate(zip(samples, asked, strict=True))
            )
        )
        for i, (sample, o) in enumerate(zip(samples, outcomes, strict=True)):
            trace.samples.append(
                SampleTrace(
                    index=i,
                    seed=o.seed,
                    temperature=sample.temperature,
                    raw_output=o.raw_output,
                    output=o.output if o.error is None else None,
                    error=error_info(o.error) if o.error is not None else None,
                    latency_s=o.latency_s,
                    usage=o.usage,
                    attempts=o.attempts,
                    member=sample.member,
                )
            )
            trace.usage = trace.usage + o.usage
            trace.attempts += o.attempts
        texts = [v for v in trace.inputs.values() if isinstance(v, str)]
        result = vote([s.output for s in trace.samples], grounded=node.grounded, texts=texts)
        trace.vote = result.to_dict()
        if result.valid == 0:
            first = next((s.error for s in trace.samples if s.error), None)
            detail = f"; first error: {first['message']}" if first else ""
            raise ExecutionError(
                f"none of the {len(trace.samples)} samples of '{wrapped.id}' gave a valid "
                f"output{detail}",
                node_id=node.id,
            )
        trace.output = result.value
        state.results[node.id] = result.value

    # ----------------------------------------------------------------- code

    async def _run_code(self, state: _RunState, node: CodeNode, trace: NodeTrace) -> None:
        if self._sandbox is None:  # guarded by _check_ready; kept for direct callers
            raise UsageError(f"code node '{node.id}' needs a sandbox")
        trace.inputs = self._resolve(state, node.id, node.inputs)
        s = self._settings
        outcome = await call_code(
            self._sandbox,
            node_id=node.id,
            code=node.code,
            kwargs=trace.inputs,
            declared=node.outputs,
            policy=CallPolicy(
                timeout_s=node.timeout_s or s.code_timeout_s,
                retries=node.retries,
                backoff_s=s.retry_backoff_s,
                max_backoff_s=s.max_backoff_s,
            ),
            semaphore=state.semaphore,
        )
        trace.attempts = outcome.attempts
        if outcome.error is not None or outcome.output is None:
            raise outcome.error or ExecutionError("code produced no output", node_id=node.id)
        trace.output = outcome.output
        state.results[node.id] = outcome.output
