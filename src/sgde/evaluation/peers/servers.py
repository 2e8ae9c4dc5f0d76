"""Local OpenAI-compatible model servers for the peers: ``python -m llama_cpp.server``.

Each server runs on 127.0.0.1 with ``OMP_WAIT_POLICY=PASSIVE`` and one thread by default
(two llama.cpp processes with spinning OpenMP threads on 2 cores run ~100x slower), logs to a
temporary file (shown when it fails to start) and is stopped — terminate, then kill — by
:meth:`LlamaServer.stop`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from sgde.errors import BackendError, UsageError

__all__ = ["LlamaServer", "die_with_parent", "free_port"]


def die_with_parent() -> None:
    """``preexec_fn`` of child processes: on Linux, SIGTERM the child when the parent dies
    (a killed bench must not leave model servers or peer workers running)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        return


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """One ``llama_cpp.server`` process.

    Args:
        model: GGUF file.
        n_threads: Threads of the server (1: leaves the other core to the other server).
        n_ctx: Context window.
        python: Interpreter that has ``llama-cpp-python[server]`` (default: sgde's).
        timeout_s: How long to wait for it to answer.
    """

    def __init__(
        self,
        model: Path,
        *,
        n_threads: int = 1,
        n_ctx: int = 4096,
        python: str | None = None,
        timeout_s: float = 120.0,
    ) -> None:
        self.model = Path(model)
        self.n_threads = n_threads
        self.n_ctx = n_ctx
        self.python = python or sys.executable
        self.timeout_s = timeout_s
        self.port = 0
        self.base_url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> LlamaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> str:
        """Start the server and wait until ``/v1/models`` answers; return its ``/v1`` URL.

        Raises:
            UsageError: the model file is missing, or the interpreter lacks the server.
            BackendError: the server exited or did not answer in time (with its log tail).
        """
        if not self.model.is_file():
            raise UsageError(
                f"model file {self.model} does not exist", hint="run `sgde models prepare`"
            )
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        cmd = [
            self.python, "-m", "llama_cpp.server",
            "--model", str(self.model),
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_threads", str(self.n_threads),
            "--n_threads_batch", str(self.n_threads),
            "--n_ctx", str(self.n_ctx),
        ]  # fmt: skip
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop())
        self._proc = subprocess.Popen(
            cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )
        try:
            self._wait_until_up()
        except BaseException:
            self.stop()
            raise
        return self.base_url

    def _tail(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-3000:]

    def _wait_until_up(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.timeout_s
        while True:
            if self._proc.poll() is not None:
                tail = self._tail()
                if "No module named" in tail:
                    raise UsageError(
                        f"{self.python} cannot run llama_cpp.server: {tail.strip()[-300:]}",
                        hint='pip install -e ".[peers]"',
                    )
                raise BackendError(
                    f"{self.model.name} exited with {self._proc.returncode}: {tail[-1500:]}",
                    provider="llama_cpp.server",
                )
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise BackendError(
                    f"{self.model.name} did not answer within {self.timeout_s:.0f} s",
                    provider="llama_cpp.server",
                )
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop the process (idempotent)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
