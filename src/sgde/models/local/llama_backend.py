"""Embedded llama.cpp models through llama-cpp-python.

One :class:`LlamaBackend` holds one loaded ``llama_cpp.Llama``. A llama.cpp context is not
thread-safe, so calls are serialised (an :class:`asyncio.Lock` per event loop plus a thread
lock across loops) and run on the backend's own worker thread, keeping the event loop
responsive. Always the same thread: llama.cpp's OpenMP thread team belongs to the thread
that starts it, so a fresh thread per call would rebuild it.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sgde.errors import BackendError, UsageError
from sgde.models.request import sample_seed
from sgde.runtime.backend import Capabilities, ChatRequest, ChatResponse, Usage

__all__ = ["LlamaBackend", "import_llama_cpp"]

PROVIDER = "local"


def import_llama_cpp() -> Any:
    """Import ``llama_cpp`` with passive OpenMP waiting; a clear error when it is missing.

    ``OMP_WAIT_POLICY=PASSIVE`` must be set before the library loads: spinning OpenMP
    threads make two llama.cpp processes on a small machine run up to 100x slower.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import llama_cpp
    except ImportError as exc:
        raise UsageError(
            f"local models need llama-cpp-python, which is not importable ({exc})",
            hint='pip install "sgde[local]"  (or: pip install "llama-cpp-python[server]==0.3.36")',
        ) from None
    return llama_cpp


class LlamaBackend:
    """A local GGUF model run in-process by llama.cpp.

    Args:
        name: The ``local:...`` name this backend answers to.
        model_path: The GGUF file.
        n_threads: CPU threads (default: all cores).
        n_ctx: Context window in tokens.
        n_gpu_layers: Layers to offload to a GPU (0 = CPU only).
        llama: An already loaded ``llama_cpp.Llama`` (or an object with the same
            ``create_chat_completion``) to use instead of loading ``model_path``.
    """

    def __init__(
        self,
        name: str,
        model_path: Path,
        *,
        n_threads: int | None = None,
        n_ctx: int = 4096,
        n_gpu_layers: int = 0,
        llama: Any | None = None,
    ) -> None:
        self._name = name
        self.model_path = Path(model_path)
        self.n_threads = n_threads or os.cpu_count() or 1
        self.n_ctx = n_ctx
        self.n_gpu_layers = n_gpu_layers
        self._llama = llama
        self._thread_lock = threading.Lock()
        self._worker: ThreadPoolExecutor | None = None
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._closed = False

    @property
    def name(self) -> str:
        """``local:...`` name."""
        return self._name

    @property
    def capabilities(self) -> Capabilities:
        """Grammar-constrained JSON schema output, JSON objects and seeds."""
        return Capabilities(json_schema=True, json_object=True, seed=True)

    @property
    def llama(self) -> Any | None:
        """The loaded ``llama_cpp.Llama`` (``None`` before :meth:`load` or the first call)."""
        return self._llama

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._llama is not None

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._loop_locks.get(loop)
        if lock is None:
            lock = self._loop_locks[loop] = asyncio.Lock()
        return lock

    def _load(self) -> Any:
        """Load the model once (called with the thread lock held)."""
        if self._llama is None:
            if self._closed:
                raise BackendError(f"{self._name} was closed", provider=PROVIDER)
            llama_cpp = import_llama_cpp()
            try:
                self._llama = llama_cpp.Llama(
                    model_path=str(self.model_path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    n_gpu_layers=self.n_gpu_layers,
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as exc:
                raise BackendError(
                    f"could not load {self.model_path}: {exc}",
                    provider=PROVIDER,
                    hint="check that the file is a GGUF model (sgde models prepare NAME)",
                ) from exc
        return self._llama

    async def load(self) -> None:
        """Load the model now instead of on the first call."""
        async with self._lock():
            await self._run(self._load)

    async def _run(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the worker thread, holding the thread lock."""
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sgde-llama")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, self._locked, fn, *args)

    def _locked(self, fn: Any, *args: Any) -> Any:
        with self._thread_lock:
            return fn(*args)

    def completion_kwargs(self, request: ChatRequest) -> dict[str, Any]:
        """Keyword arguments of ``create_chat_completion`` for ``request``."""
        kwargs: dict[str, Any] = {
            "messages": [m.to_dict() for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "seed": sample_seed(request.seed, request.sample_index),
            "repeat_penalty": 1.0,
        }
        if request.top_p is not None:
            kwargs["top_p"] = request.top_p
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if request.json_schema is not None:
            kwargs["response_format"] = {"type": "json_object", "schema": dict(request.json_schema)}
        return kwargs

    def _complete(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        llama = self._load()
        try:
            result: dict[str, Any] = llama.create_chat_completion(**kwargs)
        except ValueError as exc:
            # llama-cpp-python reports an over-long prompt as ValueError.
            raise BackendError(
                f"{self._name}: {exc}",
                provider=PROVIDER,
                hint=f"shorten the prompt or raise n_ctx (now {self.n_ctx})",
            ) from exc
        except RuntimeError as exc:
            raise BackendError(f"{self._name}: llama.cpp failed: {exc}", provider=PROVIDER) from exc
        return result

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """Run one chat completion on the loaded model.

        Raises:
            BackendError: The model could not load or the call failed (not retryable).
            UsageError: llama-cpp-python is not installed.
        """
        kwargs = self.completion_kwargs(request)
        async with self._lock():
            start = time.perf_counter()
            result = await self._run(self._complete, kwargs)
            latency = time.perf_counter() - start
        choice = result["choices"][0]
        usage = result.get("usage") or {}
        return ChatResponse(
            text=choice["message"].get("content") or "",
            usage=Usage(
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
                calls=1,
            ),
            model=self._name,
            latency_s=latency,
            finish_reason=choice.get("finish_reason"),
        )

    async def aclose(self) -> None:
        """Free the model (waits for a running call to finish)."""
        self._closed = True
        await self._run(self._release)
        if self._worker is not None:
            self._worker.shutdown(wait=False)
            self._worker = None

    def _release(self) -> None:
        llama, self._llama = self._llama, None
        if llama is not None and hasattr(llama, "close"):
            llama.close()
