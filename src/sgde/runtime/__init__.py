"""Running plans: the executor, output parsing, voting, traces and the backend seam.

Typical use::

    from sgde.runtime import Executor
    from sgde.runtime.sandbox import SandboxPool

    async with SandboxPool() as sandbox:
        result = await Executor({"student": backend}, sandbox=sandbox).run(plan, inputs)
    print(result.outputs, result.trace.to_dict())

The sandbox lives in :mod:`sgde.runtime.sandbox` and is imported from there (it starts
worker processes, so it is not imported here).
"""

from __future__ import annotations

from sgde.runtime.backend import (
    Backend,
    Capabilities,
    ChatRequest,
    ChatResponse,
    Message,
    ModelBindings,
    Usage,
)
from sgde.runtime.calls import CodeRunner, derive_seed
from sgde.runtime.consensus import VoteResult, vote
from sgde.runtime.executor import (
    Executor,
    ExecutorSettings,
    OnResult,
    RunResult,
    required_roles,
)
from sgde.runtime.inputs import coerce_input, coerce_inputs
from sgde.runtime.numbers import numbers_match, to_number, vote_key
from sgde.runtime.parsing import parse_json_output, repair_json
from sgde.runtime.render import PromptRenderer
from sgde.runtime.trace import (
    NodeTrace,
    RunTrace,
    SampleTrace,
    error_info,
    read_traces,
    write_traces,
)

__all__ = [
    "Backend",
    "Capabilities",
    "ChatRequest",
    "ChatResponse",
    "CodeRunner",
    "Executor",
    "ExecutorSettings",
    "Message",
    "ModelBindings",
    "NodeTrace",
    "OnResult",
    "PromptRenderer",
    "RunResult",
    "RunTrace",
    "SampleTrace",
    "Usage",
    "VoteResult",
    "coerce_input",
    "coerce_inputs",
    "derive_seed",
    "error_info",
    "numbers_match",
    "parse_json_output",
    "read_traces",
    "repair_json",
    "required_roles",
    "to_number",
    "vote",
    "vote_key",
    "write_traces",
]
