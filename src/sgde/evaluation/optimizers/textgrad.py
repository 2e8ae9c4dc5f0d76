"""Textual-gradient prompt optimisation (ProTeGi, Pryzant et al., 2023; TextGrad, 2024).

Our re-implementation, registered as ``textgrad-style``; the real TextGrad package runs as the
peer ``textgrad`` (:mod:`sgde.evaluation.peers`).

A beam of prompts; in each step, for each prompt in the beam:

1. *Forward*: the prompt is scored on the training rows with the student; its failing rows
   (question, the student's reply, the right answer) are the "loss".
2. *Gradient*: the teacher criticises the prompt given up to ``max_failures`` failures
   ("what in the instruction led to these mistakes") — ``num_gradients`` critiques.
3. *Step*: for each critique the teacher writes ``edits_per_gradient`` edited
   instructions that apply it; optionally ``paraphrases`` Monte-Carlo paraphrases of each.
4. *Selection*: every new prompt is scored on all training rows (with m = 3–5 rows an exact
   score is cheaper than ProTeGi's bandit selection over minibatches) and the best
   ``beam_width`` prompts (earliest among ties) form the next beam.

Stops after ``steps`` steps, when a prompt in the beam solves every training row, or when the
budget is reached. Every critique is kept in the report as a first-class record.
"""

from __future__ import annotations

from typing import Any

from sgde.evaluation.baselines.plans import PromptProgram, format_number
from sgde.evaluation.optimizers.common import Candidate, OptimizerMethod, OptimizerRun
from sgde.runtime.numbers import to_number

__all__ = ["TextGradMethod"]

_REPLY_CHARS = 600


class TextGradMethod(OptimizerMethod):
    """ProTeGi/TextGrad-style optimiser: critique failures, edit the prompt, beam search.

    Args:
        steps: Optimisation steps.
        beam_width: Prompts kept per step.
        num_gradients: Critiques per prompt and step.
        edits_per_gradient: Edited prompts per critique.
        paraphrases: Monte-Carlo paraphrases per edited prompt.
        max_failures: Failing rows shown per critique.
        temperature: Teacher sampling temperature.
    """

    name = "textgrad-style"

    def __init__(
        self,
        steps: int = 3,
        beam_width: int = 2,
        num_gradients: int = 1,
        edits_per_gradient: int = 2,
        paraphrases: int = 0,
        max_failures: int = 3,
        temperature: float = 0.7,
    ) -> None:
        self.steps = steps
        self.beam_width = beam_width
        self.num_gradients = num_gradients
        self.edits_per_gradient = edits_per_gradient
        self.paraphrases = paraphrases
        self.max_failures = max_failures
        self.temperature = temperature

    async def optimize(self, run: OptimizerRun) -> None:
        """Run the beam search; the critiques ("gradients") go into the report."""
        gradients: list[dict[str, Any]] = []
        run.notes["gradients"] = gradients
        run.notes["steps"] = 0
        beam = [await run.score(self.start_program(), origin="zero-shot CoT")]
        sample = 0
        for step in range(1, self.steps + 1):
            if any(not c.failures for c in beam):
                break  # a prompt already solves every training row
            children: list[Candidate] = []
            for parent in beam:
                failures = [
                    {
                        "question": o.question,
                        "reply": o.reply[:_REPLY_CHARS],
                        "gold": _gold_text(o.gold),
                    }
                    for o in parent.failures[: self.max_failures]
                ]
                if not failures:
                    continue
                for _ in range(self.num_gradients):
                    sample += 1
                    feedback = await run.ask_field(
                        "opt_textgrad_gradient",
                        "feedback",
                        temperature=self.temperature,
                        sample_index=sample,
                        instruction=parent.program.instruction,
                        failures=failures,
                    )
                    record: dict[str, Any] = {
                        "step": step,
                        "parent": parent.program.instruction,
                        "feedback": feedback,
                        "children": [],
                    }
                    gradients.append(record)
                    if feedback is None:
                        continue
                    for _ in range(self.edits_per_gradient):
                        sample += 1
                        edited = await run.propose(
                            "opt_textgrad_edit",
                            temperature=self.temperature,
                            sample_index=sample,
                            instruction=parent.program.instruction,
                            failures=failures,
                            feedback=feedback,
                        )
                        if edited is None:
                            continue
                        child = await run.score(PromptProgram(edited), origin="edit", step=step)
                        children.append(child)
                        record["children"].append({"instruction": edited, "score": child.score})
                        for _ in range(self.paraphrases):
                            sample += 1
                            variant = await run.propose(
                                "opt_paraphrase",
                                temperature=self.temperature,
                                sample_index=sample,
                                instruction=edited,
                            )
                            if variant is not None:
                                children.append(
                                    await run.score(
                                        PromptProgram(variant), origin="paraphrase", step=step
                                    )
                                )
            pool = _unique(beam + children)
            beam = sorted(pool, key=lambda c: -(c.score or 0.0))[: self.beam_width]
            run.notes["steps"] = step


def _unique(candidates: list[Candidate]) -> list[Candidate]:
    seen: set[int] = set()
    out = []
    for candidate in candidates:
        if id(candidate) not in seen:
            seen.add(id(candidate))
            out.append(candidate)
    return out


def _gold_text(value: Any) -> str:
    number = to_number(value)
    return format_number(number) if number is not None else str(value)
