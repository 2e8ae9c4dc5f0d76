"""OPRO (Yang et al., 2023, "Large Language Models as Optimizers").

The teacher is shown a meta-prompt with the scored instruction history — the best
``history_size`` instructions, sorted ascending by training accuracy, as in the paper — and
a few training problems with their answers, and asked for a new, better instruction;
``per_step`` instructions are sampled per step at ``temperature``. Each new instruction is
scored on the training rows with the student and joins the history. The run starts from the
zero-shot CoT instruction and an empty instruction, and stops after ``steps`` steps, at a
perfect training score, or when the budget is reached.
"""

from __future__ import annotations

from sgde.evaluation.baselines.plans import PromptProgram
from sgde.evaluation.optimizers.common import OptimizerMethod, OptimizerRun, examples_text

__all__ = ["OproMethod"]


class OproMethod(OptimizerMethod):
    """OPRO: iterate teacher proposals over a scored instruction history.

    Args:
        steps: Optimisation steps.
        per_step: Instructions sampled per step.
        history_size: Best instructions shown in the meta-prompt.
        temperature: Teacher sampling temperature.
    """

    name = "opro"

    def __init__(
        self,
        steps: int = 4,
        per_step: int = 2,
        history_size: int = 10,
        temperature: float = 1.0,
    ) -> None:
        self.steps = steps
        self.per_step = per_step
        self.history_size = history_size
        self.temperature = temperature

    async def optimize(self, run: OptimizerRun) -> None:
        """Run the OPRO loop."""
        await run.score(self.start_program(), origin="zero-shot CoT")
        await run.score(PromptProgram(""), origin="empty instruction")
        examples = examples_text(run.trainset, limit=3)
        sample = 0
        run.notes["steps"] = 0
        for step in range(1, self.steps + 1):
            best = run.best()
            if best is not None and best.score == 1.0:
                break
            ranked = sorted(
                (c for c in run.history if c.program.instruction),
                key=lambda c: c.score or 0.0,
            )[-self.history_size :]
            history = [
                {"instruction": c.program.instruction, "score": round(100 * (c.score or 0.0))}
                for c in ranked
            ]
            for _ in range(self.per_step):
                sample += 1
                instruction = await run.propose(
                    "opt_opro_meta",
                    temperature=self.temperature,
                    sample_index=sample,
                    history=history,
                    examples=examples,
                )
                if instruction is not None:
                    await run.score(PromptProgram(instruction), origin="opro", step=step)
            run.notes["steps"] = step
