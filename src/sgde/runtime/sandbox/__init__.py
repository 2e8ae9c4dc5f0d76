"""Sandbox for untrusted (teacher-written) code-node Python.

Layers: the static policy (:mod:`sgde.runtime.sandbox.policy`, a first filter with clear
messages), then OS confinement of every worker (:mod:`sgde.runtime.sandbox.confine`:
namespaces, an empty read-only root, seccomp, no privileges) with a fresh process per call,
resource limits, and Python-level restrictions as defence in depth. See ``docs/sandbox.md``.
"""

from sgde.runtime.sandbox.limits import MAX_TIMEOUT_S, SandboxLimits
from sgde.runtime.sandbox.pool import ISOLATION_ENV, SandboxPool, resolve_isolation, run_code_sync

__all__ = [
    "ISOLATION_ENV",
    "MAX_TIMEOUT_S",
    "SandboxLimits",
    "SandboxPool",
    "resolve_isolation",
    "run_code_sync",
]
