"""Load benchmark of ``sgde serve`` on 127.0.0.1: the server vs calling the executor directly.

Scenarios (each a real uvicorn server in a child process, loaded by N concurrent clients with a
fixed number of requests; every request carries a unique input and must be answered exactly
once, with the right output):

* ``fake``: ``examples/duck_eggs.yaml`` (an llm node sampled 5 times by consensus, then a code
  node in the real sandbox) with an instant fake student — the server's own overhead;
* ``fake-tight``: the same with a queue of 8, so clients get 429 + Retry-After and retry;
* ``smollm2``: a compiled plan (``--plan``) on the real SmolLM2, fewer requests.

For each: throughput, latency p50/p95 (server: as the client sees it), the same figures from
calling ``Executor.run`` directly in one process with the same clients and the same 4 run slots
as the server, their ratio, 429 counts and the server's RSS before and after the load. Usage::

    OMP_WAIT_POLICY=PASSIVE flock /tmp/sgde-model.lock python benchmarks/bench_serve.py \\
        --plan PLAN.yaml [--requests 2000] [--smollm-requests 64] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]
DUCK = ROOT / "examples" / "duck_eggs.yaml"
SERVER_CONCURRENCY = 4  # ServeSettings.max_concurrency (the default of `sgde serve`)
QUANTITIES = {"eggs_per_day": 16, "eaten_per_day": 3, "baked_per_day": 4, "price_per_egg": 2}


def _fake_student() -> Any:
    import re

    from sgde.testing import FunctionBackend

    def reply(request: Any) -> dict[str, Any]:
        # the question's first number is the eggs per day: a unique answer per request
        eggs = int(re.findall(r"\d+", request.messages[-1].content)[0])
        return {**QUANTITIES, "eggs_per_day": eggs}

    return FunctionBackend(reply, name="fake:instant")


def _question(i: int) -> str:
    return (
        f"Janet's ducks lay {100 + i} eggs per day. She eats 3 for breakfast and bakes with 4. "
        "She sells the rest for $2 per egg. How much does she make every day?"
    )


def _expected_fake(i: int) -> int:
    return (100 + i - 7) * 2


# -------------------------------------------------------------------------- the server child


def serve_child(kind: str, port: int, plan: str, queue: int) -> None:
    """Run a server (in the child process)."""
    from sgde.models import ModelSettings
    from sgde.serve.server import build_app, run_server
    from sgde.serve.settings import ServeSettings

    settings = ServeSettings(
        port=port,
        queue_size=queue,
        watch_interval_s=0,
        max_concurrency=SERVER_CONCURRENCY,
        request_timeout_s=1800,  # 64 model runs queued on 4 slots may wait minutes
    )
    models: dict[str, Any] = {"student": _fake_student()} if kind == "fake" else {}
    app, _ = build_app(
        [Path(plan)], settings, models=models, model_settings=ModelSettings(n_threads=2)
    )
    run_server(app, settings)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _start(kind: str, plan: Path, queue: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--child",
            kind,
            "--port",
            str(port),
            "--plan",
            str(plan),
            "--queue",
            str(queue),
        ],
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"the {kind} server exited with {proc.returncode}")
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not become ready")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _clients(
    n: int, clients: int, one: Callable[[int], Awaitable[float]]
) -> tuple[list[float], float]:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            latencies.append(await one(queue.get_nowait()))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, time.perf_counter() - started


async def load_server(
    url: str, name: str, inputs: list[dict[str, Any]], expected: list[Any] | None, clients: int
) -> dict[str, Any]:
    answers: dict[int, Any] = {}
    ids: list[str] = []
    rejected = 0
    async with httpx.AsyncClient(
        base_url=url, timeout=600, limits=httpx.Limits(max_connections=clients)
    ) as client:

        async def one(i: int) -> float:
            nonlocal rejected
            started = time.perf_counter()
            while True:
                r = await client.post(f"/v1/plans/{name}/run", json={"inputs": inputs[i]})
                if r.status_code != 429:
                    break
                rejected += 1
                await asyncio.sleep(float(r.headers.get("retry-after", "1")))
            if r.status_code != 200:
                raise SystemExit(f"request {i}: HTTP {r.status_code}: {r.text}")
            body = r.json()
            if i in answers:
                raise SystemExit(f"request {i} answered twice")
            answers[i] = body["outputs"]
            ids.append(body["request_id"])
            return time.perf_counter() - started

        latencies, wall = await _clients(len(inputs), clients, one)
    assert len(answers) == len(inputs) == len(set(ids)), "every request answered exactly once"
    right = None
    if expected is not None:
        right = sum(answers[i].get("answer") == expected[i] for i in range(len(inputs)))
    return {
        "requests": len(inputs),
        "answered_once": len(answers),
        "right": right,
        "throughput_rps": len(inputs) / wall,
        "p50_s": _pct(latencies, 0.5),
        "p95_s": _pct(latencies, 0.95),
        "http_429": rejected,
    }


async def load_direct(
    plan_path: Path, models: dict[str, Any], inputs: list[dict[str, Any]], clients: int
) -> dict[str, Any]:
    from sgde.models import ModelHub, ModelSettings
    from sgde.planfile import load_plan
    from sgde.runtime.executor import Executor, ExecutorSettings
    from sgde.runtime.sandbox import SandboxPool

    plan = load_plan(plan_path)
    async with ModelHub(ModelSettings(n_threads=2)) as hub, SandboxPool(workers=2) as sandbox:
        from sgde.models.plan_models import plan_model_targets

        bindings = hub.bind(plan_model_targets(plan, models).targets)
        executor = Executor(bindings, sandbox=sandbox, settings=ExecutorSettings(max_concurrency=4))
        await executor.run(plan, inputs[0])  # warm (model load, sandbox)

        slots = asyncio.Semaphore(SERVER_CONCURRENCY)  # the server's run slots, for fairness

        async def one(i: int) -> float:
            started = time.perf_counter()
            async with slots:
                await executor.run(plan, inputs[i])
            return time.perf_counter() - started

        latencies, wall = await _clients(len(inputs), clients, one)
    return {
        "throughput_rps": len(inputs) / wall,
        "p50_s": _pct(latencies, 0.5),
        "p95_s": _pct(latencies, 0.95),
    }


def scenario(
    name: str,
    kind: str,
    plan: Path,
    inputs: list[dict[str, Any]],
    expected: list[Any] | None,
    *,
    clients: int,
    queue: int,
    direct_models: dict[str, Any],
) -> dict[str, Any]:
    from sgde.planfile import load_plan

    proc, url = _start(kind, plan, queue)
    try:
        rss_before = _rss_mb(proc.pid)
        server = asyncio.run(load_server(url, load_plan(plan).name, inputs, expected, clients))
        rss_after = _rss_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    direct = asyncio.run(load_direct(plan, direct_models, inputs, clients))
    out = {
        "scenario": name,
        "clients": clients,
        "queue": queue,
        "server": server,
        "direct": direct,
        "p50_ratio": server["p50_s"] / direct["p50_s"],
        "p95_ratio": server["p95_s"] / direct["p95_s"],
        "throughput_ratio": server["throughput_rps"] / direct["throughput_rps"],
        "server_rss_mb": {"before": round(rss_before, 1), "after": round(rss_after, 1)},
    }
    print(json.dumps(out, indent=1), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--smollm-requests", type=int, default=64)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--plan", type=Path, help="compiled plan for the smollm2 scenario")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument(
        "--scenarios", default="fake,fake-tight,smollm2", help="comma-separated scenarios to run"
    )
    parser.add_argument("--child", choices=["fake", "real"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--queue", type=int, default=64, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        serve_child(args.child, args.port, str(args.plan), args.queue)
        return
    fake_inputs = [{"question": _question(i)} for i in range(args.requests)]
    fake_expected = [_expected_fake(i) for i in range(args.requests)]
    wanted = set(args.scenarios.split(","))
    fake = {"student": _fake_student()}
    results: list[dict[str, Any]] = []
    if "fake" in wanted:
        results.append(
            scenario(
                "fake",
                "fake",
                DUCK,
                fake_inputs,
                fake_expected,
                clients=args.clients,
                queue=64,
                direct_models=fake,
            )
        )
    if "fake-tight" in wanted:
        n = min(500, args.requests)
        results.append(
            scenario(
                "fake-tight",
                "fake",
                DUCK,
                fake_inputs[:n],
                fake_expected[:n],
                clients=args.clients,
                queue=8,
                direct_models=fake,
            )
        )
    if "smollm2" in wanted and args.plan is not None:
        text = (ROOT / "tests" / "fixtures" / "duck_eggs_test.jsonl").read_text()
        rows = [json.loads(line) for line in text.splitlines() if line]
        picked = [rows[i % len(rows)] for i in range(args.smollm_requests)]
        results.append(
            scenario(
                "smollm2",
                "real",
                args.plan,
                [{"question": r["question"]} for r in picked],
                [r["answer"] for r in picked],
                clients=args.clients,
                queue=64,
                direct_models={},
            )
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
