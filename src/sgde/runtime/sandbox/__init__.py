"""Sandbox for untrusted (teacher-written) code-node Python.

Layers: the static policy (:mod:`sgde.plan.policy`), then worker processes with resource
limits, restricted builtins and imports, and an audit hook. See ``docs/sandbox.md``.
"""

from sgde.runtime.sandbox.limits import SandboxLimits
from sgde.runtime.sandbox.pool import SandboxPool, run_code_sync

__all__ = ["SandboxLimits", "SandboxPool", "run_code_sync"]
