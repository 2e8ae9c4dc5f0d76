"""A concurrency limit that works across event loops, shared by the HTTP backends.

An :class:`asyncio.Semaphore` belongs to the loop it was first used on, but one backend may
serve several loops in turn (each synchronous ``compile``/``run`` call runs its own). The
limit therefore keeps one semaphore per running loop, dropped with the loop.
"""

from __future__ import annotations

import asyncio
import weakref

__all__ = ["LoopSemaphore"]


class LoopSemaphore:
    """At most ``limit`` holders at once on each event loop.

    Args:
        limit: Concurrent holders per loop (at least 1).

    Use it as ``async with limit.acquire(): ...`` inside a coroutine.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._by_loop = weakref.WeakKeyDictionary()

    def acquire(self) -> asyncio.Semaphore:
        """The running loop's semaphore (created on first use), to enter with ``async with``."""
        loop = asyncio.get_running_loop()
        sem = self._by_loop.get(loop)
        if sem is None:
            sem = self._by_loop[loop] = asyncio.Semaphore(self.limit)
        return sem
