"""LoopSemaphore: the HTTP backends' concurrency limit, one semaphore per event loop."""

from __future__ import annotations

import asyncio

from sgde.models.concurrency import LoopSemaphore


async def test_limit_holds_within_one_loop() -> None:
    limit = LoopSemaphore(2)
    active = peak = 0

    async def call() -> None:
        nonlocal active, peak
        async with limit.acquire():
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01)
            active -= 1

    await asyncio.gather(*(call() for _ in range(6)))
    assert peak == 2
    assert limit.acquire() is limit.acquire()


def test_each_loop_gets_its_own_semaphore() -> None:
    limit = LoopSemaphore(1)

    async def grab() -> asyncio.Semaphore:
        sem = limit.acquire()
        async with sem:
            return sem

    first, second = asyncio.run(grab()), asyncio.run(grab())
    assert first is not second  # a semaphore bound to a closed loop is never reused
