"""Public test fakes for sgde: model backends that need no model, code runs without workers.

Use them in your own tests of plans::

    from sgde.testing import ScriptedBackend
    from sgde.runtime import Executor

    backend = ScriptedBackend([{"eggs": 16}])
    result = await Executor({"student": backend}, sandbox=None).run(plan, {"question": "..."})
"""

from __future__ import annotations

from sgde.testing.backends import FunctionBackend, Reply, ScriptedBackend
from sgde.testing.code import InProcessCodeRunner

__all__ = ["FunctionBackend", "InProcessCodeRunner", "Reply", "ScriptedBackend"]
