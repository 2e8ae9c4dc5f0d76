"""Baselines with the real SandboxPool: the extraction node and model-written programs."""

from __future__ import annotations

from _baselines_fakes import ROWS

from sgde.evaluation.baselines import get_method
from sgde.runtime.sandbox import SandboxPool
from sgde.testing import ScriptedBackend


async def test_cot_pal_pot_with_real_sandbox() -> None:
    async with SandboxPool(workers=1) as pool:
        cot = get_method("cot")
        student = ScriptedBackend(["So 12 * 250 = 3,000 eggs. The answer is 3,000."])
        prepared = await cot.prepare(
            ROWS, teacher=None, student=student, sandbox=pool, budget=None, seed=0
        )
        pred = await cot.predict(prepared, ROWS[1], student=student, sandbox=pool, seed=0)
        assert pred.answer == 3000

        pal = get_method("pal")
        student = ScriptedBackend(
            [
                "```python\ndef solution():\n    eggs = 12\n    boxes = 250\n"
                "    return eggs * boxes\nprint(solution())\n```"
            ]
        )
        prepared = await pal.prepare(
            ROWS, teacher=None, student=student, sandbox=pool, budget=None, seed=0
        )
        pred = await pal.predict(prepared, ROWS[1], student=student, sandbox=pool, seed=0)
        assert pred.answer == 3000, pred.error

        pot = get_method("pot")
        student = ScriptedBackend(["```python\nimport math\nans = math.floor(7.5 * 2) / 6\n```"])
        prepared = await pot.prepare(
            ROWS, teacher=None, student=student, sandbox=pool, budget=None, seed=0
        )
        pred = await pot.predict(prepared, ROWS[2], student=student, sandbox=pool, seed=0)
        assert pred.answer == 2.5, pred.error

        # A program the policy refuses is contained and recorded, not run.
        student = ScriptedBackend(
            ["```python\nimport os\ndef solution():\n    return os.getpid()\n```"]
        )
        pred = await pal.predict(prepared, ROWS[0], student=student, sandbox=pool, seed=0)
        assert pred.answer is None
        assert pred.trace["sandbox_error"]["rule"].startswith("policy:")
