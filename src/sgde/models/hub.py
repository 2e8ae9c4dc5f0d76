"""The model hub: one backend per name for a run, bound to roles with metering.

``ModelHub`` owns the underlying backends (one loaded llama model is shared by every node
and role that names it), the request cache, the usage meter and the budget. ``bind`` hands
out per-role wrappers (:class:`RoleBackend`) that meter usage, enforce the budget and go
through the cache where the settings enable it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from sgde.errors import UsageError
from sgde.models.breaker import BreakerRegistry
from sgde.models.cache import RequestCache, backend_endpoint, cache_key
from sgde.models.request import estimate_prompt_tokens
from sgde.models.resolver import breaker_policy, resolve_model
from sgde.models.settings import ModelSettings, Price
from sgde.models.usage import Budget, MeteredBackend, PriceTable, RoleUsage, UsageMeter
from sgde.runtime.backend import Backend, ChatRequest, ChatResponse, Usage

__all__ = ["ModelHub", "RoleBackend"]

Resolver = Callable[[str, ModelSettings], Backend]


class RoleBackend(MeteredBackend):
    """A role's view of a shared backend: cache, budget and metering around each call.

    Order of one call: cache lookup (hit: counted, returned with ``cached=True``); budget
    reservation of the worst case; the call; the actual usage (priced) replaces the
    reservation, is added to the role's meter, and the response is cached.

    Args:
        role: Role name (``"student"``, ``"teacher"``, ...).
        backend: The shared underlying backend.
        meter: Usage meter shared by the hub.
        budget: Budget shared by the hub.
        price: Price of the model, or ``None`` when unknown.
        cache: Request cache, or ``None`` when this role is not cached.
    """

    def __init__(
        self,
        role: str,
        backend: Backend,
        *,
        meter: UsageMeter,
        budget: Budget,
        price: Price | None,
        cache: RequestCache | None,
    ) -> None:
        super().__init__(role, backend, meter)
        self._budget = budget
        self._price = price
        self._cache = cache

    @property
    def cached(self) -> bool:
        """Whether this role's calls go through the request cache."""
        return self._cache is not None

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """Run one call for this role.

        Raises:
            BudgetExceeded: Before the call, if it could overspend the budget.
            BackendError: The underlying call failed (its reservation is released).
        """
        key: str | None = None
        if self._cache is not None:
            key = cache_key(self.backend.name, request, endpoint=backend_endpoint(self.backend))
            hit = self._cache.get(key)
            if hit is not None:
                self.meter.record_cached(self.role, hit.usage)
                return hit
        prompt_estimate = estimate_prompt_tokens(request)
        worst_usd = self._price.cost(prompt_estimate, request.max_tokens) if self._price else 0.0
        reservation = self._budget.reserve(
            prompt_estimate + request.max_tokens,
            worst_usd,
            what=f"a {self.role} call to {self.backend.name}",
        )
        try:
            response = await self.backend.chat(request)
        except BaseException:
            self._budget.release(reservation)
            raise
        usage = response.usage
        usage.usd = (
            self._price.cost(usage.prompt_tokens, usage.completion_tokens) if self._price else 0.0
        )
        self._budget.commit(reservation, usage.total_tokens, usage.usd)
        self.meter.record(
            self.role, usage, estimated=response.usage_estimated, priced=self._price is not None
        )
        if key is not None and self._cache is not None:
            self._cache.put(key, response)
        return response

    async def aclose(self) -> None:
        """Nothing to do: the hub owns and closes the underlying backend."""


class ModelHub:
    """Owns the model backends of one process or run.

    Use it as an async context manager (or call :meth:`aclose`)::

        async with ModelHub(ModelSettings(budget_tokens=200_000)) as hub:
            bindings = hub.bind({"student": "local:smollm2-135m", "teacher": "openai:gpt-4o"})
            ...
            print(hub.usage)

    Args:
        settings: Model settings (defaults when omitted).
        resolver: Creates a backend from a name (default: :func:`resolve_model`); tests
            inject fakes here.
        cache: Request cache to use (default: ``requests.sqlite`` in the settings' cache
            dir, opened when a cached role is first bound).

    Attributes:
        breakers: The run's circuit breakers, one per HTTP endpoint, shared by every
            backend the default resolver creates (:func:`sgde.models.breaker.breaker_of`
            finds a backend's).
    """

    def __init__(
        self,
        settings: ModelSettings | None = None,
        *,
        resolver: Resolver | None = None,
        cache: RequestCache | None = None,
    ) -> None:
        self.settings = settings or ModelSettings()
        self.breakers = BreakerRegistry(breaker_policy(self.settings))
        self._resolver: Resolver = resolver or (
            lambda name, s: resolve_model(name, settings=s, breakers=self.breakers)
        )
        self._backends: dict[str, Backend] = {}
        self._cache = cache
        self._owns_cache = cache is None
        self.meter = UsageMeter()
        self.budget = Budget(
            max_tokens=self.settings.budget_tokens, max_usd=self.settings.budget_usd
        )
        self.prices = PriceTable.from_settings(self.settings)
        self._closed = False

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError("this ModelHub is closed; create a new one")

    def get(self, name: str) -> Backend:
        """The shared backend for ``name``, created on first use.

        Raises:
            ModelNotFoundError, UsageError: See :func:`resolve_model`.
        """
        self._check_open()
        key = name.strip()
        backend = self._backends.get(key)
        if backend is None:
            backend = self._backends[key] = self._resolver(key, self.settings)
        return backend

    @property
    def cache(self) -> RequestCache:
        """The request cache (opened lazily)."""
        if self._cache is None:
            self._cache = RequestCache.in_dir(self.settings.resolved_cache_dir())
        return self._cache

    def bind(self, roles: Mapping[str, str | Backend]) -> dict[str, Backend]:
        """Backends for roles, metered per role, budget-checked and cached where configured.

        Args:
            roles: Role name -> model name (or an existing backend, e.g. a test fake,
                which is then metered like any other).

        Raises:
            UsageError: A USD budget is set but a model has no price.
            ModelNotFoundError: A name does not resolve.
        """
        self._check_open()
        bound: dict[str, Backend] = {}
        for role, target in roles.items():
            backend = self.get(target) if isinstance(target, str) else target
            price = self.prices.lookup(backend.name)
            if price is None and self.settings.budget_usd is not None:
                raise UsageError(
                    f"a USD budget is set but {backend.name!r} (role {role!r}) has no price",
                    hint="add it to the prices (ModelSettings.prices or --prices FILE)",
                )
            cache = self.cache if self.settings.caches_role(role) else None
            bound[role] = RoleBackend(
                role, backend, meter=self.meter, budget=self.budget, price=price, cache=cache
            )
        return bound

    @property
    def usage(self) -> dict[str, Usage]:
        """Usage per role so far (cache hits cost nothing)."""
        return self.meter.usage()

    @property
    def total_usage(self) -> Usage:
        """Usage over all roles."""
        return self.meter.total()

    def usage_report(self) -> dict[str, Any]:
        """Per-role usage with cached/estimated/unpriced counts, totals and the budget."""
        details: dict[str, RoleUsage] = self.meter.details()
        return {
            "roles": {role: entry.to_dict() for role, entry in details.items()},
            "total": self.total_usage.to_dict(),
            "budget": self.budget.snapshot(),
        }

    async def aclose(self) -> None:
        """Close every backend (frees loaded models and HTTP clients) and the cache."""
        if self._closed:
            return
        self._closed = True
        backends, self._backends = list(self._backends.values()), {}
        errors: list[BaseException] = []
        for backend in backends:
            try:
                await backend.aclose()
            except Exception as exc:  # close the rest, then report the first failure
                errors.append(exc)
        if self._cache is not None and self._owns_cache:
            self._cache.close()
        if errors:
            raise errors[0]

    async def __aenter__(self) -> ModelHub:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
