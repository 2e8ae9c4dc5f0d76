"""Tokens/s of one prompt through raw llama-cpp-python and through sgde's backend.

Both paths use the same loaded ``llama_cpp.Llama`` and the same sampling parameters (those
sgde sends), so the difference is sgde's overhead: the async wrapper, the lock and the
worker thread. Runs alternate between the two paths to share any drift in machine load.

sgde sets ``OMP_WAIT_POLICY=PASSIVE`` before llama_cpp loads. Run under the model lock on
shared machines::

    OMP_WAIT_POLICY=PASSIVE flock /tmp/sgde-model.lock \\
        python benchmarks/bench_llama_speed.py --model local:smollm2-135m --runs 10
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

from sgde.models import LlamaBackend, ModelSettings, resolve_model
from sgde.runtime.backend import ChatRequest, Message

PROMPT = "Write a short story (about 150 words) about a duck farmer who sells eggs at a market."


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


async def bench(model: str, runs: int, max_tokens: int, threads: int | None) -> int:
    backend = resolve_model(model, settings=ModelSettings(n_threads=threads))
    if not isinstance(backend, LlamaBackend):
        print(f"{model} is not an embedded llama.cpp model", file=sys.stderr)
        return 2
    request = ChatRequest(messages=(Message("user", PROMPT),), max_tokens=max_tokens)
    start = time.perf_counter()
    await backend.load()
    print(
        f"model {model}: loaded in {time.perf_counter() - start:.2f} s, "
        f"n_threads={backend.n_threads}"
    )
    llama = backend.llama
    kwargs = backend.completion_kwargs(request)

    def raw_once() -> float:
        t0 = time.perf_counter()
        out = llama.create_chat_completion(**kwargs)
        return out["usage"]["completion_tokens"] / (time.perf_counter() - t0)

    async def sgde_once() -> float:
        t0 = time.perf_counter()
        response = await backend.chat(request)
        return response.usage.completion_tokens / (time.perf_counter() - t0)

    raw_once()  # warm-up: first call evaluates the prompt, later calls reuse the KV prefix
    await sgde_once()
    raw: list[float] = []
    ours: list[float] = []
    for i in range(runs):  # alternate which path goes first, so drift hits both alike
        if i % 2 == 0:
            raw.append(raw_once())
            ours.append(await sgde_once())
        else:
            ours.append(await sgde_once())
            raw.append(raw_once())
    raw_med, ours_med = statistics.median(raw), statistics.median(ours)
    print(f"raw llama-cpp-python: median {raw_med:6.1f} tok/s, best {max(raw):6.1f}  ({_fmt(raw)})")
    print(
        f"sgde LlamaBackend   : median {ours_med:6.1f} tok/s, best {max(ours):6.1f}  ({_fmt(ours)})"
    )
    ratio = ours_med / raw_med
    best_ratio = max(ours) / max(raw)
    verdict = "within" if ratio >= 0.95 else "OUTSIDE"
    print(f"ratio sgde/raw      : median {ratio:.3f}, best {best_ratio:.3f}  ({verdict} 5 %)")
    await backend.aclose()
    return 0 if ratio >= 0.95 else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="local:smollm2-135m")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    return asyncio.run(bench(args.model, args.runs, args.max_tokens, args.threads))


if __name__ == "__main__":
    sys.exit(main())
