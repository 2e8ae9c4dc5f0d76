"""OS isolation of the sandbox: refusal without it, the weak opt-in, no orphans, bounds."""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import subprocess
import sys
import textwrap
import time

import pytest

import sgde.runtime.sandbox.pool as pool_module
from sgde.errors import SandboxError, UsageError
from sgde.runtime.sandbox import MAX_TIMEOUT_S, SandboxLimits, SandboxPool, resolve_isolation
from sgde.runtime.sandbox.handle import WorkerHandle
from sgde.runtime.sandbox.runner import MAX_RESULT_DEPTH

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADD = "def run(a, b):\n    return {'sum': a + b}\n"


def descendants(root: int) -> set[int]:
    """Every live process below ``root`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


async def test_no_orphans_when_the_owner_is_killed() -> None:
    script = textwrap.dedent(
        """
        import asyncio, os
        from sgde.runtime.sandbox import SandboxLimits, SandboxPool

        async def main():
            limits = SandboxLimits(cpu_seconds=60, wall_timeout_s=120)
            async with SandboxPool(workers=2, limits=limits) as pool:
                busy = asyncio.ensure_future(
                    pool.call("def run():\\n    while True:\\n        pass\\n", {})
                )
                await asyncio.sleep(0.5)
                print("ready", flush=True)
                await busy

        asyncio.run(main())
        """
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, start_new_session=True
    )
    assert owner.stdout is not None
    line = await asyncio.to_thread(owner.stdout.readline)
    assert line.strip() == b"ready"
    below = descendants(owner.pid)
    assert len(below) >= 5  # 2 workers, 2 zygotes, 1 call process
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(pid) for pid in below):
        await asyncio.sleep(0.05)
    assert not [pid for pid in below if alive(pid)]


async def test_refuses_to_run_without_os_isolation() -> None:
    # A host that forbids namespaces (as a container's seccomp profile may): sgde must say
    # so and refuse, and run only when the weak mode is chosen explicitly.
    script = textwrap.dedent(
        """
        import asyncio
        from sgde.errors import SandboxError
        from sgde.runtime.sandbox import SandboxPool, confine

        confine._prctl(38, 1)  # PR_SET_NO_NEW_PRIVS
        confine.load_seccomp(["unshare"])

        async def main():
            try:
                async with SandboxPool(workers=1) as pool:
                    print("RAN", await pool.call("def run():\\n    return 1\\n", {}))
            except SandboxError as exc:
                print("REFUSED", exc.rule)
                print(exc)
            async with SandboxPool(workers=1, isolation="weak") as pool:
                print("WEAK", await pool.call("def run():\\n    return 2\\n", {}))

        asyncio.run(main())
        """
    )
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SGDE_SANDBOX": ""},
    )
    out = done.stdout
    assert "REFUSED isolation-unavailable" in out, (out, done.stderr)
    assert "unshare() failed" in out
    assert "SGDE_SANDBOX=weak" in out
    assert "RAN" not in out
    assert "WEAK 2" in out
    assert "WEAK isolation" in done.stderr  # the weak pool warns loudly


async def test_weak_mode_is_explicit_and_still_isolates_calls(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SGDE_SANDBOX", "weak")
    with caplog.at_level(logging.WARNING, logger="sgde.sandbox"):
        async with SandboxPool(workers=1) as pool:
            assert pool.isolation == "weak"
            assert await pool.call(ADD, {"a": 1, "b": 2}) == {"sum": 3}
            patch = "import json\ndef run():\n    json.dumps = None\n    return 1\n"
            assert await pool._call_unchecked(patch, {}) == 1
            assert await pool.call("import json\ndef run():\n    return json.dumps(1)\n", {}) == "1"
    assert "WEAK isolation" in caplog.text
    monkeypatch.setenv("SGDE_SANDBOX", "none")
    with pytest.raises(UsageError, match="SGDE_SANDBOX"):
        SandboxPool()
    monkeypatch.delenv("SGDE_SANDBOX")
    assert resolve_isolation() == "strong"
    assert resolve_isolation("WEAK") == "weak"


async def test_timeouts_are_finite_and_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in (0, -1, float("inf"), float("nan"), MAX_TIMEOUT_S + 1):
        with pytest.raises(UsageError):
            SandboxLimits(wall_timeout_s=bad)
    async with SandboxPool(workers=1) as pool:
        for bad in (0, -1, float("inf"), float("nan")):
            with pytest.raises(UsageError, match="timeout_s"):
                await pool.call(ADD, {"a": 1, "b": 2}, timeout_s=bad)
        assert await pool.call(ADD, {"a": 1, "b": 2}, timeout_s=MAX_TIMEOUT_S) == {"sum": 3}
        # Longer timeouts are lowered to the cap (a plan's node timeout may be larger).
        sent: list[dict[str, object]] = []
        real_frame = pool_module.frame

        def spy(message: dict[str, object]) -> bytes:
            sent.append(dict(message))
            return real_frame(message)

        monkeypatch.setattr(pool_module, "frame", spy)
        long = 10 * MAX_TIMEOUT_S
        assert await pool.call(ADD, {"a": 1, "b": 2}, timeout_s=long) == {"sum": 3}
        assert sent[-1]["timeout_s"] == MAX_TIMEOUT_S


async def test_cpu_timer_covers_error_formatting_and_serialising() -> None:
    limits = SandboxLimits(cpu_seconds=0.5, wall_timeout_s=20, memory_mb=1024)
    async with SandboxPool(workers=1, limits=limits, _python_layers=False) as pool:
        slow_error = (
            "def run():\n    class E(Exception):\n        def __str__(self):\n"
            "            while True:\n                pass\n    raise E()\n"
        )
        with pytest.raises(SandboxError) as info:
            await pool._call_unchecked(slow_error, {})
        assert info.value.rule == "cpu-limit"
        slow_result = "def run():\n    return [[1.5] * 1000] * 20000\n"
        with pytest.raises(SandboxError) as info:
            await pool._call_unchecked(slow_result, {})
        assert info.value.rule in ("cpu-limit", "output-too-large")
        assert await pool.call(ADD, {"a": 1, "b": 1}) == {"sum": 2}


async def test_result_nesting_is_bounded() -> None:
    nest = "def run(n):\n    x = []\n    for _ in range(n):\n        x = [x]\n    return x\n"
    async with SandboxPool(workers=1) as pool:
        ok = await pool.call(nest, {"n": MAX_RESULT_DEPTH - 1})
        depth = 0
        while ok:
            ok = ok[0]
            depth += 1
        assert depth == MAX_RESULT_DEPTH - 1
        with pytest.raises(SandboxError) as info:
            await pool.call(nest, {"n": MAX_RESULT_DEPTH + 1})
        assert info.value.rule == "not-json"
        assert "nested" in str(info.value)


async def test_a_frame_for_another_call_is_refused() -> None:
    worker = WorkerHandle.__new__(WorkerHandle)
    worker.reader = asyncio.StreamReader()
    body = b'{"ok": true, "result": "stale"}'
    worker.reader.feed_data(struct.pack(">IQ", len(body), 7) + body)
    with pytest.raises(SandboxError, match="answered call 7 instead of call 8"):
        await worker._read_frame(8, 1 << 20)


async def test_timeout_kills_the_call_not_the_worker() -> None:
    async with SandboxPool(workers=1) as pool:
        pids = pool.worker_pids
        with pytest.raises(SandboxError) as info:
            await pool.call("def run():\n    while True:\n        pass\n", {}, timeout_s=0.3)
        assert info.value.rule == "timeout"
        assert pool.worker_pids == pids
        assert await pool.call(ADD, {"a": 2, "b": 2}) == {"sum": 4}


async def test_cli_flag_selects_the_isolation(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from sgde.cli.app import app

    monkeypatch.setenv("SGDE_SANDBOX", "strong")
    result = CliRunner().invoke(app, ["--sandbox", "weak", "validate", "--help"])
    assert result.exit_code == 0, result.output
    assert os.environ["SGDE_SANDBOX"] == "weak"
    result = CliRunner().invoke(app, ["--sandbox", "none", "validate", "--help"])
    assert result.exit_code == 2
    assert "strong" in result.output


async def test_code_that_forges_its_answer_and_keeps_running_is_contained() -> None:
    linger = (
        "import os, struct, time\n"
        "def run():\n"
        '    body = b\'{"ok": true, "result": "mine"}\'\n'
        "    for fd in range(3, 20):\n"
        "        try:\n"
        "            os.write(fd, struct.pack('>QB', len(body), 0) + body)\n"
        "        except OSError:\n"
        "            pass\n"
        "    time.sleep(1000)\n"
    )
    async with SandboxPool(
        workers=1, _python_layers=False, _preload=("os", "struct", "time")
    ) as pool:
        (outer,) = pool.worker_pids
        # Its answer is its own to forge; it reaches no other code's call.
        assert await pool._call_unchecked(linger, {}, timeout_s=1.0) == "mine"
        started = time.monotonic()
        assert await pool.call(ADD, {"a": 1, "b": 1}) == {"sum": 2}
        assert time.monotonic() - started < 5.0  # not held up by the sleeping process
        # Its process is still asleep in the first call: the next call of the same code
        # is stopped at its timeout, and the process with it.
        with pytest.raises(SandboxError) as info:
            await pool._call_unchecked(linger, {}, timeout_s=0.5)
        assert info.value.rule == "timeout"
        assert pool.worker_pids == [outer]
        below = descendants(outer)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(pid) for pid in below | {outer}):
        await asyncio.sleep(0.05)
    assert not [pid for pid in below | {outer} if alive(pid)]


async def test_a_code_process_retires_on_its_cpu_budget_not_mid_call() -> None:
    busy = (
        "import os, time\n"
        "def run():\n"
        "    start = time.process_time()\n"
        "    while time.process_time() - start < 0.05:\n"
        "        pass\n"
        "    return os.getpid()\n"
    )
    limits = SandboxLimits(cpu_seconds=0.1, wall_timeout_s=10)
    async with SandboxPool(
        workers=1, limits=limits, _python_layers=False, _preload=("os", "time")
    ) as pool:
        pids = [await pool._call_unchecked(busy, {}) for _ in range(30)]
    # Same code, same process, until ten calls' worth of CPU (1 s) retire it.
    assert pids[0] == pids[1] == pids[5]
    assert 2 <= len(set(pids)) <= 4
