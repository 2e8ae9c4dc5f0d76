"""Sandbox latency benchmark: warm-pool call latency and cold start.

Run: ``python benchmarks/bench_sandbox.py [--calls 500] [--workers 2]``.
Prints the median and p95 latency of warm calls (same code, varying kwargs, sequential and
concurrent) and the cold-start time (pool start, first call of new code).
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


async def main(calls: int, workers: int) -> None:
    start = time.perf_counter()
    async with SandboxPool(workers=workers) as pool:
        started = time.perf_counter() - start
        first = time.perf_counter()
        await pool.call(CODE, {"a": 3, "b": 4})
        first_call = time.perf_counter() - first

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

    print(
        f"cold start: pool of {workers} workers ready in {started * 1000:.1f} ms; "
        f"first call of new code {first_call * 1000:.2f} ms"
    )
    report("warm call, sequential", sequential)
    report(f"warm call, {4 * workers} in flight", concurrent)
    print(f"concurrent throughput: {calls / wall:.0f} calls/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.workers))
