"""Retries with exponential backoff that honour ``Retry-After``.

HTTP backends turn SDK exceptions into a :class:`Failure` (a :class:`BackendError` saying
whether retrying may help, plus the server's ``Retry-After`` if it sent one) and call
:func:`call_with_retries`. Clock and randomness are injectable, so tests need not sleep.

Why ours and not the SDKs' own retries (the ``openai`` and ``anthropic`` clients are created
with ``max_retries=0``): both SDKs do retry with backoff and ``Retry-After``, but each with
its own defaults and rules, invisible to the caller. Here one policy
(:class:`~sgde.models.ModelSettings` ``max_retries``) covers every HTTP backend — OpenAI,
Anthropic, and llama-server / Ollama / vLLM behind the OpenAI-compatible one — alike; a
``Retry-After`` longer than ``max_retry_after_s`` ends retrying at once instead of stalling a
run (the OpenAI SDK ignores a long one and falls back to its own backoff); a body that breaks
off after the response started is retried too; every retry is logged; the final error says how
many attempts were made and what to do (key, model name, base URL); each attempt passes
through the endpoint's circuit breaker; and tests run the whole policy against a fake clock.
Leaving the SDKs' retries on as well would multiply the attempts (theirs inside ours).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, TypeVar

from sgde.errors import BackendError

if TYPE_CHECKING:
    from sgde.models.breaker import CircuitBreaker

__all__ = [
    "RETRYABLE_STATUS",
    "Failure",
    "RetryPolicy",
    "call_with_retries",
    "classify_sdk_error",
    "parse_retry_after",
    "status_retryable",
]

T = TypeVar("T")
logger = logging.getLogger(__name__)

RETRYABLE_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529})
"""HTTP statuses worth retrying: timeouts, conflicts, rate limits, server errors, overload."""


def status_retryable(status: int | None) -> bool:
    """Whether an HTTP status may succeed when retried."""
    return status is not None and (status in RETRYABLE_STATUS or status >= 500)


def parse_retry_after(
    headers: Mapping[str, str] | None, *, now: float | None = None
) -> float | None:
    """Seconds to wait from ``Retry-After`` / ``retry-after-ms`` headers, or ``None``.

    Accepts delta-seconds, an HTTP date, and the ``retry-after-ms`` extension (OpenAI).
    """
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass(frozen=True)
class Failure:
    """One failed attempt, classified.

    Attributes:
        provider: e.g. ``"openai-compatible"``.
        message: What went wrong (without the provider prefix).
        status: HTTP status, if any.
        retryable: Whether another attempt may succeed.
        retry_after: The server's requested delay in seconds, if it sent one.
        hint: What the user can do, if retrying will not help.
    """

    provider: str
    message: str
    status: int | None = None
    retryable: bool = False
    retry_after: float | None = None
    hint: str | None = None

    def to_error(self, note: str = "") -> BackendError:
        """The :class:`BackendError` to raise for this failure."""
        return BackendError(
            self.message + note,
            provider=self.provider,
            status=self.status,
            retryable=self.retryable,
            hint=self.hint,
        )


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait between attempts.

    Attributes:
        max_retries: Retries after the first attempt.
        backoff_s: First delay; doubles per retry.
        max_backoff_s: Cap of a computed delay.
        max_retry_after_s: Longest ``Retry-After`` honoured; a longer one ends retrying.
        jitter: Random extra fraction of a computed delay (0.1 = up to +10 %).
    """

    max_retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 120.0
    jitter: float = 0.1

    def delay(self, retry: int, retry_after: float | None, rng: random.Random) -> float:
        """Delay before retry number ``retry`` (1-based)."""
        if retry_after is not None:
            return retry_after
        base = min(self.max_backoff_s, self.backoff_s * 2.0 ** (retry - 1))
        return base * (1.0 + self.jitter * rng.random())


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    *,
    classify: Callable[[Exception], Failure | None],
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    rng: random.Random | None = None,
    breaker: CircuitBreaker | None = None,
) -> T:
    """Run ``attempt`` until it succeeds, fails for good, or retries run out.

    With a ``breaker``, each attempt first asks it (an open breaker fails the call at once)
    and reports its outcome to it; when the breaker opens, retrying stops.

    Args:
        attempt: One try (e.g. one HTTP request).
        classify: Maps an exception to a :class:`Failure`; ``None`` means "not ours"
            and the exception propagates unchanged.
        policy: Retry limits and delays.
        sleep: Awaitable sleep (injected by tests).
        rng: Source of jitter.
        breaker: The endpoint's circuit breaker, shared by every call to it.

    Raises:
        BackendError: The last failure, its message saying how many attempts were made.
        CircuitOpenError: The endpoint's breaker is (or just went) open.
    """
    rng = rng or random.Random()
    retry = 0
    while True:
        probe = breaker.admit() if breaker is not None else False
        try:
            result = await attempt()
        except Exception as exc:
            failure = classify(exc)
            if failure is None:
                if breaker is not None:
                    breaker.release(probe)
                raise
            if breaker is not None:
                breaker.record_failure(failure, probe)
                if breaker.is_open:
                    raise breaker.open_error() from exc
            too_long = (
                failure.retry_after is not None and failure.retry_after > policy.max_retry_after_s
            )
            if not failure.retryable or retry >= policy.max_retries or too_long:
                raise failure.to_error(_note(retry + 1, failure, too_long)) from exc
            retry += 1
            wait = policy.delay(retry, failure.retry_after, rng)
            logger.info(
                "%s: %s; retry %d/%d in %.2f s",
                failure.provider,
                failure.message,
                retry,
                policy.max_retries,
                wait,
            )
            await sleep(wait)
        except BaseException:
            if breaker is not None:
                breaker.release(probe)
            raise
        else:
            if breaker is not None:
                breaker.record_success(probe)
            return result


def _note(attempts: int, failure: Failure, too_long: bool) -> str:
    parts = []
    if attempts > 1:
        parts.append(f"gave up after {attempts} attempts")
    if too_long and failure.retry_after is not None:
        parts.append(f"the server asked to wait {failure.retry_after:.0f} s, longer than allowed")
    return f" ({'; '.join(parts)})" if parts else ""


_BROKEN_RESPONSE = frozenset({"RemoteProtocolError", "ReadError", "IncompleteRead"})
"""Transport errors after a response started: the server answered, then the body broke off."""


def _short(text: str, limit: int = 500) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def classify_sdk_error(
    exc: Exception, sdk: ModuleType, *, provider: str, where: str, key_env: str
) -> Failure | None:
    """Map an exception of the ``openai`` or ``anthropic`` SDK to a :class:`Failure`.

    Both SDKs share one exception hierarchy (``APITimeoutError`` < ``APIConnectionError``,
    ``APIStatusError`` with ``status_code`` and ``response``, ...).

    Args:
        exc: The exception raised by the SDK call.
        sdk: The SDK module (``openai`` or ``anthropic``).
        provider: Provider name for the error.
        where: ``model at base_url``, used in messages.
        key_env: Environment variable of the API key (for the 401 hint).

    Returns:
        The classified failure, or ``None`` for exceptions that are not backend failures.
    """
    if isinstance(exc, sdk.APITimeoutError):
        return Failure(provider, f"{where}: request timed out", retryable=True)
    if isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f"{type(cause).__name__}: {cause}" if cause else str(exc)
        if cause is not None and type(cause).__name__ in _BROKEN_RESPONSE:
            return Failure(
                provider, f"{where}: response broken off ({_short(detail)})", retryable=True
            )
        return Failure(
            provider,
            f"{where}: connection failed ({_short(detail)})",
            retryable=True,
            hint="check that the server is running and the base URL is right",
        )
    if isinstance(exc, sdk.APIStatusError):
        status = int(exc.status_code)
        response = getattr(exc, "response", None)
        headers = dict(response.headers) if response is not None else {}
        hint = {
            401: f"check the API key ({key_env} or --api-key)",
            403: "the key lacks access to this model",
            404: "check the model name and the base URL",
        }.get(status)
        return Failure(
            provider,
            f"{where}: {_short(str(exc.message))}",
            status=status,
            retryable=status_retryable(status),
            retry_after=parse_retry_after(headers),
            hint=hint,
        )
    if isinstance(exc, sdk.APIResponseValidationError):
        return Failure(
            provider, f"{where}: malformed response ({_short(str(exc))})", retryable=True
        )
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
        return Failure(
            provider, f"{where}: response body is not valid JSON ({exc})", retryable=True
        )
    if isinstance(exc, sdk.APIError):
        return Failure(provider, f"{where}: {_short(str(exc))}", retryable=True)
    if isinstance(exc, getattr(sdk, "OpenAIError", getattr(sdk, "AnthropicError", ()))):
        return Failure(provider, f"{where}: {_short(str(exc))}")
    return None
