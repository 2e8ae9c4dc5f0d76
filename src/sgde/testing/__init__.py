"""Public test fakes for sgde: model backends that need no model.

Use them in your own tests of plans::

    from sgde.testing import ScriptedBackend
    from sgde.runtime import Executor

    backend = ScriptedBackend([{"eggs": 16}])
    result = await Executor({"student": backend}, sandbox=None).run(plan, {"question": "..."})
"""

from __future__ import annotations

from sgde.testing.backends import FunctionBackend, Reply, ScriptedBackend

__all__ = ["FunctionBackend", "Reply", "ScriptedBackend"]
