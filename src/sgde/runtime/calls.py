"""Single calls with timeout and retries: one model sample, one sandboxed code run.

The executor composes these into nodes. Each call acquires the run's concurrency
semaphore only around the backend/sandbox call itself (not while backing off), and the
timeout starts once the semaphore is held, so queueing never counts as a timeout.

Retry policy (``retries`` extra attempts, exponential backoff between them):

* model calls: timeouts, :class:`~sgde.errors.BackendError` with ``retryable=True`` and,
  when ``retry_parse`` is set, :class:`~sgde.errors.OutputParseError`. A retry uses a new
  seed (derived from the attempt number), so a caching backend does not replay the same
  failure. :class:`~sgde.errors.BudgetExceeded` is never retried and propagates.
* code calls: timeouts and the sandbox's transient failures (rules ``timeout`` and
  ``worker-crashed``); policy refusals, runtime errors, resource limits and bad results
  are deterministic and not retried.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import jsonschema.protocols

from sgde.errors import (
    BackendError,
    BudgetExceeded,
    ExecutionError,
    NodeTimeoutError,
    OutputParseError,
    SandboxError,
)
from sgde.runtime.backend import Backend, ChatRequest, Message, Usage
from sgde.runtime.parsing import parse_json_output

__all__ = [
    "CallOutcome",
    "CallPolicy",
    "CodeRunner",
    "call_code",
    "call_model",
    "derive_seed",
]

_TRANSIENT_SANDBOX_RULES = frozenset({"timeout", "worker-crashed"})


class CodeRunner(Protocol):
    """What the executor needs from a sandbox (:class:`sgde.runtime.sandbox.SandboxPool`)."""

    async def call(
        self,
        code: str,
        kwargs: dict[str, Any],
        *,
        entry: str = "run",
        timeout_s: float | None = None,
    ) -> Any:
        """Run ``entry(**kwargs)`` from ``code`` in isolation and return its result."""
        ...


def derive_seed(run_seed: int, node_id: str, index: int = 0, attempt: int = 0) -> int:
    """A request seed derived deterministically from the run seed and the call's position.

    Args:
        run_seed: The run's seed.
        node_id: The sampled node's id.
        index: Sample index (0 for a plain node).
        attempt: Attempt number (0 for the first attempt).

    Returns:
        A non-negative 31-bit integer.
    """
    text = f"{run_seed}\x1f{node_id}\x1f{index}\x1f{attempt}"
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class CallPolicy:
    """Timeout and retries of one node call (one model or sandbox call of a plan node).

    Not :class:`sgde.models.RetryPolicy`, which is a backend's backoff on transient endpoint
    errors (429, 5xx) *inside* one such call.

    Attributes:
        timeout_s: Per-attempt timeout, seconds.
        retries: Extra attempts after a failure.
        backoff_s: Delay before the first retry; doubles per retry.
        max_backoff_s: Upper bound of one delay.
    """

    timeout_s: float
    retries: int = 0
    backoff_s: float = 0.2
    max_backoff_s: float = 5.0

    def delay(self, attempt: int) -> float:
        """Backoff before retry number ``attempt + 1``."""
        return float(min(self.max_backoff_s, self.backoff_s * (2**attempt)))


@dataclass
class CallOutcome:
    """Result of one call, successful or not.

    Attributes:
        output: Parsed fields on success, else None.
        raw_output: Raw model text of the last attempt that returned (model calls).
        error: The final exception, when the call failed.
        attempts: Attempts made.
        usage: Tokens over all attempts.
        latency_s: Wall time including backoff.
        seed: Seed of the last attempt (model calls).
        model: Backend name (model calls).
    """

    output: dict[str, Any] | None = None
    raw_output: str | None = None
    error: BaseException | None = None
    attempts: int = 0
    usage: Usage = field(default_factory=Usage)
    latency_s: float = 0.0
    seed: int | None = None
    model: str | None = None


def _counted(usage: Usage) -> Usage:
    if usage.calls:
        return usage
    return Usage(usage.prompt_tokens, usage.completion_tokens, 1, usage.usd)


async def call_model(
    backend: Backend,
    *,
    node_id: str,
    messages: tuple[Message, ...],
    schema: Mapping[str, Any] | None,
    send_schema: bool,
    temperature: float,
    max_tokens: int,
    top_p: float | None,
    run_seed: int,
    index: int,
    policy: CallPolicy,
    retry_parse: bool,
    semaphore: asyncio.Semaphore,
    validator: jsonschema.protocols.Validator | None = None,
) -> CallOutcome:
    """Call a model with retries and parse its output.

    Args:
        backend: The model.
        node_id: Node id (seed derivation and messages).
        messages: Rendered conversation.
        schema: Output schema to parse against; None yields ``{"text": raw}``.
        send_schema: Whether to pass ``schema`` to the backend as ``json_schema``.
        temperature: Sampling temperature.
        max_tokens: Completion limit.
        top_p: Nucleus sampling.
        run_seed: The run's seed.
        index: Sample index (also sent as ``ChatRequest.sample_index``).
        policy: Timeout and retries.
        retry_parse: Whether a parse failure is retried.
        semaphore: The run's concurrency bound.
        validator: Prebuilt validator of ``schema`` (see
            :func:`~sgde.runtime.parsing.compile_output_schema`).

    Returns:
        The outcome; failures are recorded in ``error``, not raised.

    Raises:
        BudgetExceeded: propagated unchanged (a run-level stop).
    """
    out = CallOutcome(model=backend.name)
    started = time.perf_counter()
    for attempt in range(policy.retries + 1):
        out.attempts = attempt + 1
        out.seed = derive_seed(run_seed, node_id, index, attempt)
        request = ChatRequest(
            messages=messages,
            temperature=temperature,
            max_tokens=max_tokens,
            top_p=top_p,
            seed=out.seed,
            json_schema=schema if send_schema else None,
            sample_index=index,
        )
        retryable = False
        try:
            async with semaphore:
                response = await asyncio.wait_for(backend.chat(request), policy.timeout_s)
        except asyncio.TimeoutError:
            out.error = NodeTimeoutError(
                f"model call timed out after {policy.timeout_s:g} s "
                f"(attempt {attempt + 1} of {policy.retries + 1})",
                node_id=node_id,
                hint="raise the node's timeout_s or use a faster model",
            )
            retryable = True
        except BudgetExceeded:
            raise
        except BackendError as exc:
            out.error, retryable = exc, exc.retryable
        except Exception as exc:
            out.error = exc
        else:
            out.usage = out.usage + _counted(response.usage)
            out.raw_output = response.text
            try:
                if schema is None:
                    out.output = {"text": response.text}
                else:
                    out.output = parse_json_output(
                        response.text, schema, node_id=node_id, validator=validator
                    )
            except OutputParseError as exc:
                out.error, retryable = exc, retry_parse
            else:
                out.error = None
                break
        if not retryable or attempt == policy.retries:
            break
        await asyncio.sleep(policy.delay(attempt))
    out.latency_s = time.perf_counter() - started
    return out


def _retryable_sandbox_error(exc: SandboxError) -> bool:
    return exc.rule in _TRANSIENT_SANDBOX_RULES


def _check_fields(node_id: str, result: Any, declared: list[str] | None) -> dict[str, Any]:
    if not isinstance(result, dict) or not all(isinstance(k, str) for k in result):
        raise ExecutionError(
            f"code must return a dict of output fields (str keys), got {type(result).__name__}",
            node_id=node_id,
            hint='make run(...) return e.g. {"answer": value}',
        )
    if declared:
        missing = [name for name in declared if name not in result]
        if missing:
            raise ExecutionError(
                f"code result lacks declared output field(s) {', '.join(missing)}; "
                f"it returned {', '.join(result) or 'no fields'}",
                node_id=node_id,
            )
    return result


async def call_code(
    runner: CodeRunner,
    *,
    node_id: str,
    code: str,
    kwargs: dict[str, Any],
    declared: list[str] | None,
    policy: CallPolicy,
    semaphore: asyncio.Semaphore,
) -> CallOutcome:
    """Run a code node's ``run(**kwargs)`` in the sandbox, with retries.

    Args:
        runner: The sandbox.
        node_id: Node id for messages.
        code: Source defining ``run``.
        kwargs: Resolved inputs.
        declared: Declared output fields, checked when given.
        policy: Timeout and retries. The sandbox enforces the timeout itself; an outer
            guard of twice the timeout plus one second catches a runner that hangs.
        semaphore: The run's concurrency bound.

    Returns:
        The outcome with the result dict in ``output``, or the failure in ``error``.
    """
    out = CallOutcome()
    started = time.perf_counter()
    for attempt in range(policy.retries + 1):
        out.attempts = attempt + 1
        retryable = False
        try:
            async with semaphore:
                result = await asyncio.wait_for(
                    runner.call(code, dict(kwargs), timeout_s=policy.timeout_s),
                    policy.timeout_s * 2 + 1.0,
                )
            out.output = _check_fields(node_id, result, declared)
            out.error = None
            break
        except asyncio.TimeoutError:
            out.error = NodeTimeoutError(
                f"code did not finish within {policy.timeout_s:g} s", node_id=node_id
            )
            retryable = True
        except SandboxError as exc:
            out.error, retryable = exc, _retryable_sandbox_error(exc)
        except BudgetExceeded:
            raise
        except Exception as exc:
            out.error = exc
        if not retryable or attempt == policy.retries:
            break
        await asyncio.sleep(policy.delay(attempt))
    out.latency_s = time.perf_counter() - started
    return out
