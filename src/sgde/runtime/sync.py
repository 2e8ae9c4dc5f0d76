"""Synchronous entry points over sgde's async API.

Every ``foo()`` that wraps an ``async foo_async()`` (``evaluate_plan``, ``run_code_sync``,
``synthesise``, ``run_bench``, ...) runs it with :func:`run_sync`, so all of them behave the
same inside a running event loop (a notebook, an async test): a clear
:class:`~sgde.errors.UsageError` that names the async variant, instead of asyncio's
``RuntimeError`` and a "coroutine was never awaited" warning.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from sgde.errors import UsageError

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T], *, name: str, use_instead: str) -> T:
    """Run ``coro`` to completion in a new event loop and return its result.

    Args:
        coro: The coroutine (not yet started).
        name: The synchronous function's name, for the message (``"evaluate_plan"``).
        use_instead: What to await inside a loop (``"evaluate_plan_async(...)"``).

    Raises:
        UsageError: when called from a running event loop; ``coro`` is closed unstarted.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    coro.close()
    raise UsageError(
        f"{name}() cannot run inside a running event loop",
        hint=f"await {use_instead} instead",
    )
