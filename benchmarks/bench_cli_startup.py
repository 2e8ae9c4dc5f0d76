"""Start-up time of the ``sgde`` command line (the whole process, from outside).

Times, as fresh processes (``python -m sgde ...``), what a user waits for before anything
happens:

* ``sgde --help`` (the target: median under 0.5 s);
* ``sgde --version``;
* ``python -c "import sgde"`` (the library's own import);
* ``python -c "pass"`` (the interpreter alone, the floor of all of the above).

Each command runs ``--warmup`` times uncounted (to fill the OS file cache), then ``--runs``
times; min, median and max wall seconds are printed, and the median CPU seconds (user +
system of the child), which a busy machine inflates much less than wall time. Quote the
median: the spread shows how noisy the machine was. ``--check`` exits with status 1 when the
``--help`` median is over ``--limit`` seconds. This is a benchmark, not a test: timings
depend on the machine. Run::

    python benchmarks/bench_cli_startup.py [--runs 10] [--check --limit 0.5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time

COMMANDS: dict[str, list[str]] = {
    "sgde --help": [sys.executable, "-m", "sgde", "--help"],
    "sgde --version": [sys.executable, "-m", "sgde", "--version"],
    "import sgde": [sys.executable, "-c", "import sgde"],
    "python (floor)": [sys.executable, "-c", "pass"],
}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_command(argv: list[str], *, runs: int, warmup: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of ``runs`` fresh runs of ``argv`` (after ``warmup`` uncounted).

    Raises:
        RuntimeError: The command failed (its stderr is in the message).
    """
    env = {**os.environ, "COLUMNS": "100"}
    times: list[float] = []
    cpu: list[float] = []
    for i in range(warmup + runs):
        cpu_before = _children_cpu()
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, env=env, check=False)
        elapsed = time.perf_counter() - start
        cpu_used = _children_cpu() - cpu_before
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} exited with {done.returncode}: {done.stderr.decode()[-500:]}"
            )
        if i >= warmup:
            times.append(elapsed)
            cpu.append(cpu_used)
    return times, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="counted runs per command")
    parser.add_argument("--warmup", type=int, default=2, help="uncounted runs first")
    parser.add_argument("--check", action="store_true", help="fail if --help is too slow")
    parser.add_argument("--limit", type=float, default=0.5, help="--help median limit, s")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    print(
        f"{'command':<16} {'min':>7} {'median':>7} {'max':>7} {'cpu med':>8}"
        f"   ({args.runs} runs, seconds)"
    )
    medians: dict[str, float] = {}
    for name, argv in COMMANDS.items():
        times, cpu = time_command(argv, runs=args.runs, warmup=args.warmup)
        medians[name] = statistics.median(times)
        print(
            f"{name:<16} {min(times):7.3f} {medians[name]:7.3f} {max(times):7.3f} "
            f"{statistics.median(cpu):8.3f}"
        )
    help_median = medians["sgde --help"]
    verdict = "ok" if help_median < args.limit else "TOO SLOW"
    print(f"sgde --help median {help_median:.3f} s (limit {args.limit:.2f} s): {verdict}")
    return 1 if args.check and help_median >= args.limit else 0


if __name__ == "__main__":
    sys.exit(main())
