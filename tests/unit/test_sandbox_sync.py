"""Synchronous-side tests of the sandbox: run_code_sync, loop exit without close, limits."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sgde.errors import SandboxError, UsageError
from sgde.runtime.sandbox import SandboxLimits, SandboxPool, run_code_sync

ADD = "def run(a, b):\n    return {'sum': a + b}\n"


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_loop_exit_without_close_does_not_hang(tmp_path: Path) -> None:
    script = tmp_path / "leak.py"
    script.write_text(
        textwrap.dedent(
            """\
            import asyncio
            from sgde.runtime.sandbox import SandboxPool

            POOLS = []

            async def main():
                pool = SandboxPool(workers=2)
                POOLS.append(pool)
                print(await pool.call("def run():\\n    return 5\\n", {}))
                print(*pool.worker_pids)

            asyncio.run(main())
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    assert lines[0] == "5"
    pids = [int(p) for p in lines[1].split()]
    assert len(pids) == 2
    for _ in range(100):
        if not any(alive(pid) for pid in pids):
            break
        time.sleep(0.05)
    assert not any(alive(pid) for pid in pids)


def test_run_code_sync() -> None:
    assert run_code_sync(ADD, {"a": 4, "b": 5}) == {"sum": 9}
    with pytest.raises(SandboxError) as info:
        run_code_sync("def run():\n    return eval('1')\n")
    assert info.value.rule == "policy:forbidden-name"


def test_invalid_arguments() -> None:
    with pytest.raises(UsageError):
        SandboxLimits(cpu_seconds=0)
    with pytest.raises(UsageError):
        SandboxLimits(memory_mb=1)
    with pytest.raises(UsageError):
        SandboxPool(workers=0)
