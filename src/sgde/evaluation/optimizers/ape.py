"""APE (Zhou et al., 2022, "Large Language Models Are Human-Level Prompt Engineers").

1. Proposal: the teacher sees the training rows as solved examples and infers the
   instruction that produced them ("forward generation"), ``num_candidates`` times at
   ``temperature`` (each a separate sample).
2. Scoring: each distinct candidate is scored on the training rows with the student;
   the zero-shot CoT instruction is scored too, as candidate 0, so APE never returns a
   prompt that scores worse on the training rows than plain CoT.
3. Iterative Monte Carlo search (``resample_rounds``): the teacher paraphrases the
   ``resample_top`` best candidates, which are scored in turn.

The best-scoring instruction (earliest among ties) becomes the prompt. The run stops early
when the budget is reached.
"""

from __future__ import annotations

from sgde.evaluation.baselines.plans import PromptProgram
from sgde.evaluation.optimizers.common import OptimizerMethod, OptimizerRun

__all__ = ["ApeMethod"]


class ApeMethod(OptimizerMethod):
    """APE: propose instructions from examples, keep the best on the training rows.

    Args:
        num_candidates: Instructions proposed from the examples.
        resample_rounds: Rounds of paraphrasing the best candidates.
        resample_top: Candidates paraphrased per round.
        temperature: Teacher sampling temperature.
    """

    name = "ape"
    supports_typed_tasks = True

    def __init__(
        self,
        num_candidates: int = 6,
        resample_rounds: int = 1,
        resample_top: int = 2,
        temperature: float = 0.9,
    ) -> None:
        self.num_candidates = num_candidates
        self.resample_rounds = resample_rounds
        self.resample_top = resample_top
        self.temperature = temperature

    async def optimize(self, run: OptimizerRun) -> None:
        """Propose, score, resample."""
        start = self.start_program()
        await run.score(start, origin="zero-shot CoT")
        examples = run.examples()
        sample = 0
        for _ in range(self.num_candidates):
            sample += 1
            instruction = await run.propose(
                "opt_ape_propose",
                temperature=self.temperature,
                sample_index=sample,
                examples=examples,
                task=run.task.description if run.task is not None else None,
            )
            if instruction is not None:
                await run.score(PromptProgram(instruction), origin="proposal", step=0)
            if _perfect(run):
                return
        run.notes["rounds"] = 0
        for round_index in range(1, self.resample_rounds + 1):
            run.notes["rounds"] = round_index
            ranked = sorted(run.history, key=lambda c: -(c.score or 0.0))[: self.resample_top]
            for parent in ranked:
                sample += 1
                instruction = await run.propose(
                    "opt_paraphrase",
                    temperature=self.temperature,
                    sample_index=sample,
                    instruction=parent.program.instruction,
                )
                if instruction is not None:
                    await run.score(
                        PromptProgram(instruction), origin="paraphrase", step=round_index
                    )
            if _perfect(run):
                break


def _perfect(run: OptimizerRun) -> bool:
    best = run.best()
    return best is not None and best.score == 1.0
