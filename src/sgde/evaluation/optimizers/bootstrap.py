"""Bootstrap few-shot (DSPy's ``BootstrapFewShot`` + random search over demo sets).

1. Bootstrap: the teacher answers each training row with the zero-shot CoT prompt (first
   greedily, then up to ``max_rounds - 1`` sampled retries at ``temperature``); a reply
   whose extracted number matches the gold answer becomes a demo (question, the teacher's
   worked solution, answer). Replies longer than ``max_rationale_chars`` are not used:
   they would crowd the student's context.
2. Candidate demo sets, as DSPy's random search orders them: no demos (zero-shot), the
   labelled rows without rationale, the bootstrapped demos in training order, then
   ``num_candidate_sets`` seeded random subsets (bootstrapped demos, topped up with labelled
   rows that have none), each of at most ``max_demos`` demos.
3. Selection: each set is scored with the student on the training rows, leaving a row's own
   demo out of the prompt that answers it; the best set wins (the earlier set among ties).
"""

from __future__ import annotations

import random
from typing import Any

from sgde.evaluation.baselines.base import predict_with_plan
from sgde.evaluation.baselines.plans import (
    Demo,
    PromptProgram,
    cot_plan,
    default_cot_instruction,
    demos_from_rows,
    row_id,
)
from sgde.evaluation.optimizers.common import OptimizerMethod, OptimizerRun
from sgde.runtime.numbers import numbers_match

__all__ = ["BootstrapFewShotMethod"]


class BootstrapFewShotMethod(OptimizerMethod):
    """Bootstrap verified worked solutions with the teacher; pick the best demo set.

    Args:
        max_demos: Demos per prompt.
        max_rounds: Teacher attempts per training row.
        num_candidate_sets: Random demo sets tried besides the fixed ones.
        temperature: Teacher temperature of the retries.
        max_rationale_chars: Longest worked solution kept as a demo.
    """

    name = "bootstrap-fewshot"

    def __init__(
        self,
        max_demos: int = 4,
        max_rounds: int = 2,
        num_candidate_sets: int = 4,
        temperature: float = 0.7,
        max_rationale_chars: int = 1500,
    ) -> None:
        self.max_demos = max_demos
        self.max_rounds = max_rounds
        self.num_candidate_sets = num_candidate_sets
        self.temperature = temperature
        self.max_rationale_chars = max_rationale_chars

    async def optimize(self, run: OptimizerRun) -> None:
        """Bootstrap demos, then score the candidate demo sets."""
        attempts: list[dict[str, Any]] = []
        run.notes["bootstrap_attempts"] = attempts
        bootstrapped: list[Demo] = []
        labelled = demos_from_rows(run.trainset)
        for index, row in enumerate(run.trainset):
            rid = row_id(row, index)
            for attempt in range(self.max_rounds):
                temperature = 0.0 if attempt == 0 else self.temperature
                plan = cot_plan(temperature=temperature, name="bootstrap-teacher")
                prediction = await predict_with_plan(
                    plan,
                    row,
                    student=run.teacher,
                    sandbox=run.sandbox,
                    seed=run.seed * 1000 + attempt,
                )
                rationale = prediction.raw.strip()
                ok = prediction.answer is not None and numbers_match(
                    prediction.answer, row.get("answer")
                )
                usable = ok and 0 < len(rationale) <= self.max_rationale_chars
                attempts.append(
                    {
                        "row_id": rid,
                        "attempt": attempt,
                        "answer": prediction.answer,
                        "correct": ok,
                        "used": usable,
                    }
                )
                if usable:
                    bootstrapped.append(
                        Demo(
                            question=labelled[index].question,
                            answer=labelled[index].answer,
                            rationale=rationale,
                            source_id=rid,
                        )
                    )
                    break
        run.notes["bootstrapped_demos"] = len(bootstrapped)
        instruction = default_cot_instruction()
        sets: list[tuple[str, tuple[Demo, ...]]] = [
            ("zero-shot", ()),
            ("labelled", labelled[: self.max_demos]),
        ]
        if bootstrapped:
            sets.append(("bootstrapped", tuple(bootstrapped[: self.max_demos])))
            covered = {d.source_id for d in bootstrapped}
            pool = bootstrapped + [d for d in labelled if d.source_id not in covered]
            rng = random.Random(run.seed)
            for _ in range(self.num_candidate_sets):
                size = rng.randint(1, min(self.max_demos, len(pool)))
                sets.append(("random", tuple(rng.sample(pool, size))))
        for step, (origin, demos) in enumerate(sets):
            await run.score(PromptProgram(instruction, demos), origin=origin, step=step)
