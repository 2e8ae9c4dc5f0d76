"""Circuit breakers: stop calling a model endpoint that is down, notice when it is back.

One :class:`CircuitBreaker` per endpoint (base URL), shared by every call of a run: the
:class:`~sgde.models.ModelHub` owns a :class:`BreakerRegistry` and hands the same breaker to
every backend that talks to the same server. The HTTP backends pass it to
:func:`~sgde.models.retry.call_with_retries`, which asks it before each attempt and tells it
how the attempt went.

States::

    closed ──(N consecutive endpoint failures)──▶ open ──(cool-down over)──▶ half-open
      ▲                                             ▲                           │
      └────────────── the probe call succeeds ──────┼───── the probe fails ─────┘
                                                    (cool-down doubles, up to a cap)

- *Endpoint failures* are the ones that say the server is not serving: transport errors
  (connection refused or reset, timeouts, a response broken off or garbled) and HTTP 5xx.
  Any answer below 500 (including 4xx and 429) proves the server is up and resets the count.
- While *open*, every call fails at once with the same :class:`~sgde.errors.CircuitOpenError`
  (``retryable=False``): no request is sent, no backoff is slept.
- After the cool-down the next call is let through as the *probe* (others still fail at
  once); its outcome closes the breaker or opens it again for a longer cool-down. Traffic
  drives the probes, so a server such as ``sgde serve`` probes about once per cool-down.

``sgde serve`` reads :attr:`CircuitBreaker.is_open` and :attr:`CircuitBreaker.retry_after_s`
(via :func:`breaker_of`) to answer 503 with ``Retry-After`` instead of queueing requests.
State changes are guarded by a lock, so one breaker may be shared across threads and loops.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sgde.errors import CircuitOpenError

if TYPE_CHECKING:
    from sgde.models.retry import Failure

__all__ = [
    "BreakerPolicy",
    "BreakerRegistry",
    "BreakerState",
    "CircuitBreaker",
    "breaker_of",
    "is_endpoint_failure",
]

BreakerState = Literal["closed", "open", "half-open"]

_PROBE_RETRY_S = 1.0
"""``retry_after_s`` while a probe is in flight: its answer is due soon."""


@dataclass(frozen=True)
class BreakerPolicy:
    """When a breaker opens and how long it stays open.

    Attributes:
        failures: Consecutive endpoint failures that open the breaker (0 disables it).
        cooldown_s: First wait before a probe is let through.
        max_cooldown_s: Cap of the cool-down, which doubles after each failed probe.
    """

    failures: int = 5
    cooldown_s: float = 10.0
    max_cooldown_s: float = 120.0

    def __post_init__(self) -> None:
        if self.failures < 0 or self.cooldown_s < 0 or self.max_cooldown_s < self.cooldown_s:
            raise ValueError(
                "breaker policy needs failures >= 0 and 0 <= cooldown_s <= max_cooldown_s"
            )

    @property
    def enabled(self) -> bool:
        """Whether breakers with this policy ever open."""
        return self.failures > 0


def is_endpoint_failure(failure: Failure) -> bool:
    """Whether ``failure`` says the endpoint is not serving (counts towards opening).

    Transport failures (no HTTP status: refused, reset, timed out, broken or garbled
    response) and HTTP 5xx count; an HTTP answer below 500 means the server is up.
    """
    if failure.status is None:
        return failure.retryable
    return failure.status >= 500


class CircuitBreaker:
    """The breaker of one endpoint (see the module docstring for the states).

    Args:
        endpoint: What the breaker guards, e.g. ``http://127.0.0.1:8080/v1`` (in messages).
        policy: Thresholds and cool-downs.
        clock: Monotonic clock in seconds (tests inject a fake).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        policy: BreakerPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoint = endpoint
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._state: BreakerState = "closed"
        self._consecutive = 0
        self._opened_at = 0.0
        self._cooldown = self.policy.cooldown_s
        self._probe_out = False
        self._provider = "model endpoint"
        self._last_failure = ""
        self._opened = 0
        self._rejected = 0

    # -- reading ---------------------------------------------------------------------------
    @property
    def state(self) -> BreakerState:
        """``closed``, ``open`` or ``half-open`` (a cool-down is over or a probe is out)."""
        with self._lock:
            return self._current_state()

    @property
    def is_open(self) -> bool:
        """Whether a call made now would be refused at once."""
        with self._lock:
            state = self._current_state()
            return state == "open" or (state == "half-open" and self._probe_out)

    @property
    def retry_after_s(self) -> float:
        """Seconds until a call may be let through (0.0 when one would be now)."""
        with self._lock:
            state = self._current_state()
            if state == "open":
                return max(0.0, self._opened_at + self._cooldown - self._clock())
            if state == "half-open" and self._probe_out:
                return _PROBE_RETRY_S
            return 0.0

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready state for metrics and health pages."""
        with self._lock:
            state = self._current_state()
            return {
                "endpoint": self.endpoint,
                "state": state,
                "consecutive_failures": self._consecutive,
                "last_failure": self._last_failure or None,
                "times_opened": self._opened,
                "calls_refused": self._rejected,
            }

    def _current_state(self) -> BreakerState:
        if self._state == "open" and (
            self._probe_out or self._clock() >= self._opened_at + self._cooldown
        ):
            return "half-open"
        return self._state

    # -- one call --------------------------------------------------------------------------
    def admit(self) -> bool:
        """Ask to make one call now.

        Returns:
            Whether this call is the probe of a half-open breaker (pass it back to
            :meth:`record_success` / :meth:`record_failure` / :meth:`release`).

        Raises:
            CircuitOpenError: The breaker is open (or a probe is already out).
        """
        with self._lock:
            state = self._current_state()
            if state == "closed":
                return False
            if state == "half-open" and not self._probe_out:
                self._probe_out = True
                return True
            self._rejected += 1
            raise self._error_locked()

    def record_success(self, probe: bool = False) -> None:
        """The call got an answer: reset the count, close after a successful probe."""
        with self._lock:
            self._answered_locked(probe)

    def record_failure(self, failure: Failure, probe: bool = False) -> None:
        """The call failed: count it if it says the endpoint is not serving."""
        with self._lock:
            if not is_endpoint_failure(failure):
                self._answered_locked(probe)
                return
            self._provider = failure.provider
            self._last_failure = (
                failure.message
                if failure.status is None
                else (f"HTTP {failure.status}: {failure.message}")
            )
            if probe:
                self._consecutive += 1
                self._probe_out = False
                self._cooldown = min(self.policy.max_cooldown_s, self._cooldown * 2.0)
                self._open_locked()
                return
            self._consecutive += 1
            if (
                self._state == "closed"
                and self.policy.enabled
                and self._consecutive >= self.policy.failures
            ):
                self._open_locked()

    def release(self, probe: bool = False) -> None:
        """The call ended without a verdict (cancelled, or an error that is not the
        endpoint's): a probe slot it held is freed for the next call."""
        if probe:
            with self._lock:
                self._probe_out = False

    def open_error(self) -> CircuitOpenError:
        """The error calls get while the breaker is open."""
        with self._lock:
            return self._error_locked()

    # -- transitions (lock held) -------------------------------------------------------------
    def _answered_locked(self, probe: bool) -> None:
        self._consecutive = 0
        if probe or self._state != "closed":
            self._probe_out = False
            self._state = "closed"
            self._cooldown = self.policy.cooldown_s

    def _open_locked(self) -> None:
        self._state = "open"
        self._opened_at = self._clock()
        self._opened += 1

    def _error_locked(self) -> CircuitOpenError:
        wait = max(0.0, self._opened_at + self._cooldown - self._clock())
        if self._probe_out:
            wait = max(wait, _PROBE_RETRY_S)
        last = f" (last: {self._last_failure})" if self._last_failure else ""
        return CircuitOpenError(
            f"{self.endpoint} is not answering after {self._consecutive} consecutive "
            f"failures{last}; calls to it fail at once until a probe in {wait:.0f} s "
            "finds it back",
            provider=self._provider,
            endpoint=self.endpoint,
            retry_after_s=wait,
            hint=f"check that the server at {self.endpoint} is running and reachable, then "
            "rerun the command with --resume to keep the work already done",
        )


class BreakerRegistry:
    """One :class:`CircuitBreaker` per endpoint for one run (owned by the model hub).

    Args:
        policy: The policy of every breaker it creates.
        clock: Monotonic clock passed to the breakers.
    """

    def __init__(
        self,
        policy: BreakerPolicy | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self._lock = threading.Lock()
        self._breakers: dict[str, CircuitBreaker] = {}

    def for_endpoint(self, endpoint: str) -> CircuitBreaker:
        """The breaker of ``endpoint`` (a base URL; a trailing ``/`` is ignored)."""
        key = endpoint.rstrip("/")
        with self._lock:
            breaker = self._breakers.get(key)
            if breaker is None:
                breaker = self._breakers[key] = CircuitBreaker(
                    key, policy=self.policy, clock=self._clock
                )
            return breaker

    def __iter__(self) -> Iterator[CircuitBreaker]:
        with self._lock:
            return iter(list(self._breakers.values()))

    def __len__(self) -> int:
        with self._lock:
            return len(self._breakers)


def breaker_of(backend: object) -> CircuitBreaker | None:
    """The circuit breaker guarding ``backend``'s endpoint, or ``None`` (local models, fakes).

    Looks through wrappers that keep the wrapped backend in ``.backend`` (a hub's
    :class:`~sgde.models.RoleBackend`).
    """
    seen = 0
    current: object | None = backend
    while current is not None and seen < 8:
        breaker = getattr(current, "breaker", None)
        if isinstance(breaker, CircuitBreaker):
            return breaker
        current = getattr(current, "backend", None)
        seen += 1
    return None
