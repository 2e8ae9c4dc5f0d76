"""Executor overhead per node versus a bare backend call.

Measures, with a backend that answers instantly (so only sgde's own work is timed):

* ``bare``: ``await backend.chat(request)`` alone;
* ``llm chain``: a plan of N llm nodes in a chain (render, request, parse, trace), per node;
* ``llm chain (schema)``: the same with an ``output_schema`` (JSON extraction + validation);
* ``consensus``: one consensus node of n samples, per sample;
* ``code chain``: N code nodes in a chain through a warm :class:`SandboxPool`, per node,
  next to a bare warm ``pool.call``.

Prints medians over repeats and the overhead ratio. Run::

    python benchmarks/bench_executor.py [--nodes 20] [--repeats 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable

from sgde.planfile import loads_plan
from sgde.runtime import ChatRequest, Executor, ExecutorSettings, Message
from sgde.testing import FunctionBackend


def _llm_chain(n: int, *, schema: bool) -> str:
    lines = [
        "schema_version: 1",
        "name: bench-llm",
        "inputs: {x: string}",
        f"outputs: {{y: n{n - 1}.{'v' if schema else 'text'}}}",
        "nodes:",
    ]
    for i in range(n):
        source = "input.x" if i == 0 else f"n{i - 1}.{'v' if schema else 'text'}"
        lines += [
            f"  - id: n{i}",
            "    kind: llm",
            "    model: student",
            f"    inputs: {{x: {source}}}",
            "    prompt: 'Step {{ x }}'",
        ]
        if schema:
            lines.append(
                "    output_schema: {type: object, properties: {v: {type: string}}, required: [v]}"
            )
    return "\n".join(lines) + "\n"


def _consensus(n: int) -> str:
    return f"""
schema_version: 1
name: bench-consensus
inputs: {{x: string}}
outputs: {{y: vote.v}}
nodes:
  - id: ask
    kind: llm
    model: student
    inputs: {{x: input.x}}
    prompt: 'Q {{{{ x }}}}'
    output_schema: {{type: object, properties: {{v: {{type: integer}}}}, required: [v]}}
  - id: vote
    kind: consensus
    of: ask
    n: {n}
    temperature: 0.7
"""


def _code_chain(n: int) -> str:
    lines = [
        "schema_version: 1",
        "name: bench-code",
        "inputs: {x: number}",
        f"outputs: {{y: c{n - 1}.v}}",
        "nodes:",
    ]
    for i in range(n):
        source = "input.x" if i == 0 else f"c{i - 1}.v"
        lines += [
            f"  - id: c{i}",
            "    kind: code",
            f"    inputs: {{x: {source}}}",
            "    code: |",
            "      def run(x):",
            '          return {"v": x + 1}',
        ]
    return "\n".join(lines) + "\n"


async def _median(fn: Callable[[], Awaitable[object]], repeats: int, per: int) -> float:
    await fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - start) / per)
    return statistics.median(times)


def _row(label: str, seconds: float, base: float | None = None) -> str:
    ratio = f"{seconds / base:8.1f}x" if base else ""
    return f"{label:<34}{seconds * 1e6:10.1f} us {ratio}"


async def main(nodes: int, repeats: int, samples: int, code: bool) -> None:
    text_backend = FunctionBackend(lambda req: "ok")
    json_backend = FunctionBackend(lambda req: '{"v": "ok"}')
    vote_backend = FunctionBackend(lambda req: '{"v": 3}')
    request = ChatRequest(messages=(Message("user", "Step x"),))
    bare = await _median(lambda: text_backend.chat(request), repeats * 20, 1)

    settings = ExecutorSettings(max_concurrency=4)
    plain = loads_plan(_llm_chain(nodes, schema=False))
    with_schema = loads_plan(_llm_chain(nodes, schema=True))
    vote_plan = loads_plan(_consensus(samples))
    ex_text = Executor({"student": text_backend}, sandbox=None, settings=settings)
    ex_json = Executor({"student": json_backend}, sandbox=None, settings=settings)
    ex_vote = Executor({"student": vote_backend}, sandbox=None, settings=settings)
    llm = await _median(lambda: ex_text.run(plain, {"x": "a"}), repeats, nodes)
    llm_schema = await _median(lambda: ex_json.run(with_schema, {"x": "a"}), repeats, nodes)
    vote = await _median(lambda: ex_vote.run(vote_plan, {"x": "a"}), repeats, samples)

    print(f"executor overhead (median of {repeats} runs; backend answers instantly)")
    print(_row("bare backend.chat", bare))
    print(_row(f"llm chain ({nodes} nodes), per node", llm, bare))
    print(_row("llm chain + schema, per node", llm_schema, bare))
    print(_row(f"consensus (n={samples}), per sample", vote, bare))
    print(
        f"  -> executor overhead per llm node: {(llm - bare) * 1e6:.0f} us "
        f"(+{(llm_schema - bare) * 1e6:.0f} us with JSON parsing and validation)"
    )

    if not code:
        return
    from sgde.runtime.sandbox import SandboxPool

    async with SandboxPool(workers=2) as pool:
        source = 'def run(x):\n    return {"v": x + 1}\n'
        bare_code = await _median(lambda: pool.call(source, {"x": 1}), repeats, 1)
        chain = loads_plan(_code_chain(nodes))
        ex_code = Executor({}, sandbox=pool, settings=settings)
        per_code = await _median(lambda: ex_code.run(chain, {"x": 0}), max(5, repeats // 3), nodes)
    print(_row("bare pool.call (warm)", bare_code))
    print(_row(f"code chain ({nodes} nodes), per node", per_code, bare_code))
    print(f"  -> executor overhead per code node: {(per_code - bare_code) * 1e3:.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=20, help="nodes per chain")
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per measurement")
    parser.add_argument("--samples", type=int, default=5, help="consensus samples")
    parser.add_argument("--no-code", action="store_true", help="skip the sandbox measurement")
    args = parser.parse_args()
    asyncio.run(main(args.nodes, args.repeats, args.samples, not args.no_code))
