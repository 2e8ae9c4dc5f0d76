"""Usage metering, prices and hard budgets.

- :class:`PriceTable`: USD per 1M tokens by model name or prefix (defaults in
  ``prices.yaml``, overridable by settings and a YAML file).
- :class:`UsageMeter`: the one usage ledger of a run — usage summed per role, with counts of
  cached, estimated and unpriced calls, so nothing is silently dropped. Everything that
  reports usage (the CLI, the compile report, bench cells) reads a meter; nothing keeps a
  counter of its own. :class:`MeteredBackend` puts a meter in front of a backend that is not
  bound through a :class:`~sgde.models.ModelHub` (the hub's role backends record into its
  meter already).
- :class:`Budget`: a token and/or USD cap. Each call *reserves* its worst case (estimated
  prompt tokens + ``max_tokens``) before it is made and raises :class:`BudgetExceeded` if
  that could overspend; afterwards the reservation is replaced by the actual usage (or
  released when the call failed), so the totals stay consistent under concurrency.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sgde.errors import BudgetExceeded, UsageError
from sgde.models.settings import ModelSettings, Price
from sgde.planfile.files import read_user_text
from sgde.planfile.sourcemap import compose_yaml, describe_yaml_error
from sgde.runtime.backend import Backend, Capabilities, ChatRequest, ChatResponse, Usage
from sgde.runtime.trace import usage_from_dict

__all__ = [
    "SELF_HOSTED_PROVIDERS",
    "Budget",
    "MeteredBackend",
    "PriceTable",
    "Reservation",
    "RoleUsage",
    "UsageMeter",
    "format_cost",
    "load_prices_file",
]

SELF_HOSTED_PROVIDERS: tuple[str, ...] = ("local", "ollama", "openai-compatible")
"""Providers that run on the user's own hardware: no per-token charge."""


def format_cost(usd: float | None, model: str = "") -> str:
    """A cost for people: ``"$0.0123"``, ``"local (no charge)"`` or ``"–"`` (not known).

    A zero cost of a self-hosted model is not a price of zero dollars that was looked up, so
    it is not shown as ``$0.0000``.

    Args:
        usd: The cost in USD, or ``None`` when it does not apply or is not known.
        model: The ``provider:model`` name the cost is for (may be empty).
    """
    if usd is None:
        return "–"
    if usd == 0 and model.split(":", 1)[0] in SELF_HOSTED_PROVIDERS:
        return "local (no charge)"
    if 0 < usd < 0.0001:
        return "< $0.0001"
    return f"${usd:,.4f}"


def _parse_prices(data: Any, *, source: str) -> dict[str, Price]:
    if not isinstance(data, Mapping):
        raise UsageError(
            f"{source}: prices must be a mapping of model name to {{input, output}}",
            hint='e.g.  "openai:gpt-4o-mini": {input: 0.15, output: 0.60}',
        )
    out: dict[str, Price] = {}
    for key, value in data.items():
        try:
            out[str(key)] = value if isinstance(value, Price) else Price.model_validate(value)
        except ValidationError as exc:
            raise UsageError(
                f"{source}: bad price for {key!r}: {exc.errors()[0]['msg']}",
                hint="give input and output in USD per 1M tokens, e.g. {input: 0.15, output: 0.6}",
            ) from None
    return out


def load_prices_file(path: Path) -> dict[str, Price]:
    """Read a YAML price file (``name: {input: USD/1M, output: USD/1M}``).

    Raises:
        UsageError: The file is missing or malformed.
    """
    text = read_user_text(path, what="price file")  # regular files only, size-capped
    try:
        composed = compose_yaml(text)  # bounded aliases and nesting
    except yaml.YAMLError as exc:
        message, line = describe_yaml_error(exc)
        where = f"{path}:{line}" if line is not None else str(path)
        raise UsageError(f"{where}: price file: {message}") from None
    data = composed[0] if composed is not None else None
    return _parse_prices(data or {}, source=str(path))


class PriceTable:
    """Prices by full model name or name prefix; the longest matching key wins.

    Args:
        prices: Mapping of name/prefix to :class:`Price`.
    """

    def __init__(self, prices: Mapping[str, Price]) -> None:
        self._prices = dict(prices)

    @classmethod
    def default(cls) -> PriceTable:
        """The packaged default table (``sgde/models/prices.yaml``)."""
        text = resources.files("sgde.models").joinpath("prices.yaml").read_text(encoding="utf-8")
        return cls(_parse_prices(yaml.safe_load(text), source="sgde/models/prices.yaml"))

    @classmethod
    def from_settings(cls, settings: ModelSettings) -> PriceTable:
        """Defaults, then ``settings.prices_file``, then ``settings.prices``."""
        prices = cls.default().as_dict()
        if settings.prices_file is not None:
            prices.update(load_prices_file(settings.prices_file))
        prices.update(settings.prices)
        return cls(prices)

    def as_dict(self) -> dict[str, Price]:
        """A copy of the table."""
        return dict(self._prices)

    def lookup(self, name: str) -> Price | None:
        """The price of ``name`` (exact key, else the longest key that prefixes it)."""
        if name in self._prices:
            return self._prices[name]
        best = max((k for k in self._prices if name.startswith(k)), key=len, default=None)
        return self._prices[best] if best is not None else None


@dataclass
class RoleUsage:
    """Usage of one role plus what the totals do not show.

    Attributes:
        usage: Tokens, calls and USD actually spent (cache hits excluded).
        cached_calls: Calls answered from the request cache (free).
        replayed: What the cached calls had cost when they were first made (not spent again).
        estimated_calls: Calls whose usage the endpoint did not report (estimated).
        unpriced_calls: Calls to a model without a price (USD counted as 0).
    """

    usage: Usage = field(default_factory=Usage)
    cached_calls: int = 0
    estimated_calls: int = 0
    unpriced_calls: int = 0
    replayed: Usage = field(default_factory=Usage)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            **self.usage.to_dict(),
            "cached_calls": self.cached_calls,
            "replayed_tokens": self.replayed.total_tokens,
            "estimated_calls": self.estimated_calls,
            "unpriced_calls": self.unpriced_calls,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoleUsage:
        """Inverse of :meth:`to_dict` (replayed tokens are kept as completion tokens)."""
        return cls(
            usage=usage_from_dict(data),
            cached_calls=int(data.get("cached_calls", 0)),
            estimated_calls=int(data.get("estimated_calls", 0)),
            unpriced_calls=int(data.get("unpriced_calls", 0)),
            replayed=Usage(0, int(data.get("replayed_tokens", 0))),
        )

    def copy(self) -> RoleUsage:
        """An independent copy."""
        return RoleUsage(
            Usage() + self.usage,
            self.cached_calls,
            self.estimated_calls,
            self.unpriced_calls,
            Usage() + self.replayed,
        )

    def __add__(self, other: RoleUsage) -> RoleUsage:
        return RoleUsage(
            self.usage + other.usage,
            self.cached_calls + other.cached_calls,
            self.estimated_calls + other.estimated_calls,
            self.unpriced_calls + other.unpriced_calls,
            self.replayed + other.replayed,
        )


class UsageMeter:
    """The usage ledger of a run: usage summed per role (thread-safe)."""

    def __init__(self) -> None:
        self._roles: dict[str, RoleUsage] = {}
        self._lock = threading.Lock()

    def _role(self, role: str) -> RoleUsage:
        return self._roles.setdefault(role, RoleUsage())

    def record(
        self, role: str, usage: Usage, *, estimated: bool = False, priced: bool = True
    ) -> None:
        """Add one call's usage to ``role``."""
        with self._lock:
            entry = self._role(role)
            entry.usage = entry.usage + usage
            entry.estimated_calls += int(estimated)
            entry.unpriced_calls += int(not priced)

    def record_cached(self, role: str, replayed: Usage | None = None) -> None:
        """Count one cache hit for ``role`` (no tokens spent; ``replayed``: what it saved)."""
        with self._lock:
            entry = self._role(role)
            entry.cached_calls += 1
            if replayed is not None:
                entry.replayed = entry.replayed + replayed

    def usage(self) -> dict[str, Usage]:
        """Usage per role (copies)."""
        with self._lock:
            return {role: Usage() + entry.usage for role, entry in self._roles.items()}

    def role_usage(self, role: str) -> Usage:
        """Usage of one role (a copy; zero for a role with no calls)."""
        with self._lock:
            entry = self._roles.get(role)
            return Usage() + entry.usage if entry is not None else Usage()

    def details(self) -> dict[str, RoleUsage]:
        """Full per-role records (copies)."""
        with self._lock:
            return {role: e.copy() for role, e in self._roles.items()}

    def total(self) -> Usage:
        """Usage over all roles."""
        total = Usage()
        for usage in self.usage().values():
            total = total + usage
        return total

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Per-role records, JSON-ready (see :meth:`RoleUsage.to_dict`)."""
        return {role: entry.to_dict() for role, entry in self.details().items()}

    def restore(self, data: Mapping[str, Mapping[str, Any]]) -> None:
        """Add the per-role records of an earlier part of the same run (a resumed compile)."""
        with self._lock:
            for role, entry in data.items():
                self._roles[role] = self._role(role) + RoleUsage.from_dict(entry)


class MeteredBackend:
    """A backend whose every call is recorded in a :class:`UsageMeter` under one role.

    For backends not bound through a :class:`~sgde.models.ModelHub` (whose role backends,
    :class:`~sgde.models.RoleBackend`, extend this with a cache, a budget and prices). A
    response marked ``cached`` (answered by a request cache further in) counts as a cached
    call, not as spent tokens. No budget, no cache: closing it leaves the wrapped backend to
    its owner.

    Args:
        role: The role to record under (``"teacher"``, ``"student"``, ...).
        backend: The backend to meter.
        meter: The ledger.
    """

    def __init__(self, role: str, backend: Backend, meter: UsageMeter) -> None:
        self.role = role
        self.backend = backend
        self.meter = meter

    @property
    def name(self) -> str:
        """Name of the underlying model."""
        return self.backend.name

    @property
    def capabilities(self) -> Capabilities:
        """Capabilities of the underlying model."""
        return self.backend.capabilities

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """Run one call and record its usage."""
        response = await self.backend.chat(request)
        if response.cached:
            self.meter.record_cached(self.role, response.usage)
        else:
            self.meter.record(self.role, response.usage, estimated=response.usage_estimated)
        return response

    async def aclose(self) -> None:
        """Nothing to do: the wrapped backend belongs to whoever created it."""


@dataclass(frozen=True)
class Reservation:
    """Worst-case cost held by a call in flight."""

    tokens: int
    usd: float


class Budget:
    """A hard cap on tokens and/or USD across all roles (``None`` = no cap).

    Args:
        max_tokens: Cap on prompt + completion tokens.
        max_usd: Cap on spend in USD.
    """

    def __init__(self, *, max_tokens: int | None = None, max_usd: float | None = None) -> None:
        self.max_tokens = max_tokens
        self.max_usd = max_usd
        self.spent_tokens = 0
        self.spent_usd = 0.0
        self.reserved_tokens = 0
        self.reserved_usd = 0.0
        self._lock = threading.Lock()

    @property
    def limited(self) -> bool:
        """Whether any cap is set."""
        return self.max_tokens is not None or self.max_usd is not None

    def snapshot(self) -> dict[str, Any]:
        """Spent, reserved and limits, JSON-ready."""
        with self._lock:
            return {
                "spent_tokens": self.spent_tokens,
                "spent_usd": round(self.spent_usd, 6),
                "reserved_tokens": self.reserved_tokens,
                "reserved_usd": round(self.reserved_usd, 6),
                "max_tokens": self.max_tokens,
                "max_usd": self.max_usd,
            }

    def reserve(self, tokens: int, usd: float, *, what: str = "the next call") -> Reservation:
        """Hold the worst-case cost of a call before making it.

        Raises:
            BudgetExceeded: The call could push spending past a cap; nothing is reserved.
        """
        with self._lock:
            if self.max_tokens is not None:
                after = self.spent_tokens + self.reserved_tokens + tokens
                if after > self.max_tokens:
                    raise BudgetExceeded(
                        f"token budget exceeded: {what} may use up to {tokens} tokens, "
                        f"{self.spent_tokens} spent and {self.reserved_tokens} in flight "
                        f"of {self.max_tokens}",
                        spent=self._spent(),
                    )
            if self.max_usd is not None:
                after_usd = self.spent_usd + self.reserved_usd + usd
                if after_usd > self.max_usd:
                    raise BudgetExceeded(
                        f"USD budget exceeded: {what} may cost up to ${usd:.4f}, "
                        f"${self.spent_usd:.4f} spent and ${self.reserved_usd:.4f} in flight "
                        f"of ${self.max_usd:.4f}",
                        spent=self._spent(),
                    )
            self.reserved_tokens += tokens
            self.reserved_usd += usd
            return Reservation(tokens, usd)

    def commit(self, reservation: Reservation, tokens: int, usd: float) -> None:
        """Replace a reservation by the call's actual cost."""
        with self._lock:
            self._drop(reservation)
            self.spent_tokens += tokens
            self.spent_usd += usd

    def release(self, reservation: Reservation) -> None:
        """Drop a reservation of a call that failed (nothing was spent)."""
        with self._lock:
            self._drop(reservation)

    def _drop(self, reservation: Reservation) -> None:
        self.reserved_tokens = max(0, self.reserved_tokens - reservation.tokens)
        self.reserved_usd = max(0.0, self.reserved_usd - reservation.usd)

    def _spent(self) -> dict[str, Any]:
        return {"tokens": self.spent_tokens, "usd": round(self.spent_usd, 6)}
