"""Resource limits of sandboxed code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sgde.errors import UsageError

__all__ = ["MAX_TIMEOUT_S", "SandboxLimits"]

MAX_TIMEOUT_S = 600.0
"""Longest wall-clock time one sandboxed call may be given (seconds)."""


@dataclass(frozen=True)
class SandboxLimits:
    """Limits applied to every sandboxed call.

    Attributes:
        cpu_seconds: CPU time one call may use (module import + call + serialising the
            result). Enforced by the kernel (``ITIMER_PROF``): the worker is killed at the
            limit, even inside C code. Also bounds the worker's lifetime CPU via
            ``RLIMIT_CPU`` (:attr:`worker_cpu_seconds`).
        memory_mb: Address space of a worker process (``RLIMIT_AS``), interpreter included
            (about 30 MB). Allocations beyond it raise ``MemoryError``.
        wall_timeout_s: Wall-clock time one call may take (at most :data:`MAX_TIMEOUT_S`);
            the worker kills the call at the limit (the pool kills the worker if it does
            not answer shortly after). ``SandboxPool.call(timeout_s=...)`` overrides.
        max_output_bytes: Largest JSON-encoded result accepted.
        recursion_limit: Python recursion limit inside the worker.
        worker_cpu_seconds: Hard CPU budget of one worker over its lifetime; the worker is
            retired (replaced) before it reaches it.
    """

    cpu_seconds: float = 5
    memory_mb: int = 512
    wall_timeout_s: float = 10.0
    max_output_bytes: int = 1_000_000
    recursion_limit: int = 1000
    worker_cpu_seconds: int = 3600

    def __post_init__(self) -> None:
        checks = {
            "cpu_seconds": 0 < self.cpu_seconds <= MAX_TIMEOUT_S,
            "memory_mb": self.memory_mb >= 64,
            "wall_timeout_s": 0 < self.wall_timeout_s <= MAX_TIMEOUT_S,
            "max_output_bytes": self.max_output_bytes >= 16,
            "recursion_limit": 50 <= self.recursion_limit <= 100_000,
            "worker_cpu_seconds": self.worker_cpu_seconds > 2 * self.cpu_seconds,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise UsageError(
                f"invalid SandboxLimits field(s): {', '.join(bad)} ({self})",
                hint=f"use positive limits; cpu_seconds and wall_timeout_s <= {MAX_TIMEOUT_S:g}, "
                "memory_mb >= 64, max_output_bytes >= 16, "
                "50 <= recursion_limit <= 100000, worker_cpu_seconds > 2 * cpu_seconds",
            )

    def to_config(self) -> dict[str, Any]:
        """The limits as the JSON mapping the worker process reads at start-up."""
        return {
            "cpu_seconds": float(self.cpu_seconds),
            "memory_bytes": int(self.memory_mb) * 1024 * 1024,
            "max_output_bytes": int(self.max_output_bytes),
            "recursion_limit": int(self.recursion_limit),
            "worker_cpu_seconds": int(self.worker_cpu_seconds),
        }
