"""Sandbox latency benchmark: warm-pool call latency and cold start.

Run: ``python benchmarks/bench_sandbox.py [--calls 500] [--workers 2] [--isolation strong]``.
Prints the median and p95 latency of warm calls (same code, varying kwargs, sequential and
concurrent; every call runs in a fresh process forked from a confined worker), the latency of
a call of code the pool has not seen, and the cold start (median of 5 one-worker pool
starts, and the start of the measured pool).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from sgde.runtime.sandbox import SandboxPool

CODE = """\
import math


def run(a, b):
    return {"answer": round(math.sqrt(a * a + b * b), 6), "sum": a + b}
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def report(label: str, seconds: list[float]) -> None:
    ms = [s * 1000 for s in seconds]
    print(
        f"{label:<34} n={len(ms):<5} median={statistics.median(ms):7.3f} ms  "
        f"p95={percentile(ms, 0.95):7.3f} ms  max={max(ms):7.3f} ms"
    )


async def cold_starts(isolation: str, n: int = 5) -> list[float]:
    """Seconds from creating a one-worker pool to its first answer."""
    out = []
    for _ in range(n):
        start = time.perf_counter()
        async with SandboxPool(workers=1, isolation=isolation) as pool:
            await pool.call(CODE, {"a": 1, "b": 2})
            out.append(time.perf_counter() - start)
    return out


async def main(calls: int, workers: int, isolation: str) -> None:
    colds = await cold_starts(isolation)
    start = time.perf_counter()
    async with SandboxPool(workers=workers, isolation=isolation) as pool:
        started = time.perf_counter() - start
        first = time.perf_counter()
        await pool.call(CODE, {"a": 3, "b": 4})
        first_call = time.perf_counter() - first

        fresh = []
        for i in range(50):
            t = time.perf_counter()
            await pool.call(CODE + f"\n\nVARIANT = {i}\n", {"a": i, "b": 1})
            fresh.append(time.perf_counter() - t)

        sequential = []
        for i in range(calls):
            t = time.perf_counter()
            await pool.call(CODE, {"a": i, "b": i + 1})
            sequential.append(time.perf_counter() - t)

        async def timed(i: int) -> float:
            t = time.perf_counter()
            await pool.call(CODE, {"a": i, "b": 2})
            return time.perf_counter() - t

        concurrent: list[float] = []
        wall = time.perf_counter()
        for offset in range(0, calls, 4 * workers):
            batch = range(offset, min(calls, offset + 4 * workers))
            concurrent += await asyncio.gather(*(timed(i) for i in batch))
        wall = time.perf_counter() - wall

    print(f"isolation: {isolation}")
    report("cold start, 1-worker pool + 1 call", colds)
    print(
        f"cold start: pool of {workers} workers ready in {started * 1000:.1f} ms; "
        f"first call {first_call * 1000:.2f} ms"
    )
    report("warm call, sequential", sequential)
    report("call of code not seen before", fresh)
    report(f"warm call, {4 * workers} in flight", concurrent)
    print(f"concurrent throughput: {calls / wall:.0f} calls/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--isolation", choices=["strong", "weak"], default="strong")
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.workers, args.isolation))
