"""Bounded concurrency with backpressure: run slots, a bounded queue, 429 beyond it."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator

from sgde.serve.errors import ApiError

__all__ = ["Admission"]


class Admission:
    """At most ``concurrency`` runs at once and ``queue_size`` waiting; more are refused.

    A refused request gets 429 with ``Retry-After``: the expected time for the queue ahead of
    it to drain, from the recent mean run time (at least one second).

    Args:
        concurrency: Runs in flight at once.
        queue_size: Requests that may wait for a slot.
    """

    def __init__(self, concurrency: int, queue_size: int) -> None:
        self.concurrency = concurrency
        self.queue_size = queue_size
        self._slots = asyncio.Semaphore(concurrency)
        self.running = 0
        self.waiting = 0
        self.rejected = 0
        self._mean_s = 1.0
        self._closing = False

    def retry_after_s(self) -> int:
        """Seconds a refused client should wait before retrying."""
        ahead = self.waiting + self.running
        return max(1, math.ceil(self._mean_s * ahead / self.concurrency))

    def close(self) -> None:
        """Refuse new requests (503) from now on; those admitted finish."""
        self._closing = True

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a run slot for the body of the ``async with``.

        Raises:
            ApiError: 429 when the queue is full, 503 when the server is stopping.
        """
        if self._closing:
            raise ApiError(503, "shutting_down", "the server is stopping; retry on another one")
        if self.running + self.waiting >= self.concurrency + self.queue_size:
            self.rejected += 1
            retry = self.retry_after_s()
            raise ApiError(
                429,
                "overloaded",
                f"{self.running} requests are running and {self.waiting} waiting (the queue "
                f"holds {self.queue_size}); retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        started = time.perf_counter()
        try:
            yield
        finally:
            self.running -= 1
            self._slots.release()
            elapsed = time.perf_counter() - started
            self._mean_s = 0.8 * self._mean_s + 0.2 * elapsed
