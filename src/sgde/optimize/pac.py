"""PAC sample-complexity bounds for a compile.

Two forms are implemented, both for the *realisable* case:

* **Finite class.** A learner picks, among a finite set ``H`` of candidate plans, one that is
  consistent with ``m`` i.i.d. training examples (zero training loss). With probability at
  least ``1 - δ`` its true error is at most ``ε`` whenever
  ``m ≥ (ln|H| + ln(1/δ)) / ε``, i.e. ``ε = (ln|H| + ln(1/δ)) / m``.
* **Occam / prior.** With a prior ``P`` over plans fixed before the data is seen, a consistent
  plan ``h`` has true error at most ``ε`` with probability ``1 - δ`` whenever
  ``m ≥ (ln(1/P(h)) + ln(1/δ)) / ε``. The uniform prior over ``H`` recovers the first form.

Assumptions (stated in every compile report): training rows are i.i.d. draws from the task
distribution the plan will see; the plan is consistent with the training set in every
repeat; ``H`` is the set of hypotheses the compiler *searched*: the candidate plans it
scored (the initial plan, every edit, every look-ahead follow-up) plus every hypothesis its
code sources examined against the training rows (sampled programs, and — when the
enumerative search ran — every expression it tried, which is where the class grows and the
teacher's prior earns its keep) — a bound over what was searched, not over all plans the
teacher could write; the student's sampling is treated as part of the plan (greedy nodes
are deterministic).
With non-zero training loss the realisable bound does not apply and the report says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from sgde.errors import UsageError

__all__ = [
    "PacStatement",
    "delta_for",
    "epsilon_for",
    "epsilon_occam",
    "pac_statement",
    "sample_size",
    "sample_size_occam",
]


def _check(epsilon: float | None = None, delta: float | None = None) -> None:
    if epsilon is not None and not 0.0 < epsilon < 1.0:
        raise UsageError(f"epsilon must be in (0, 1), got {epsilon}", hint="e.g. --epsilon 0.1")
    if delta is not None and not 0.0 < delta < 1.0:
        raise UsageError(f"delta must be in (0, 1), got {delta}", hint="e.g. --delta 0.05")


def _check_h(hypotheses: int) -> None:
    if hypotheses < 1:
        raise UsageError(f"the number of hypotheses must be >= 1, got {hypotheses}")


def sample_size(epsilon: float, delta: float, hypotheses: int) -> int:
    """Smallest ``m`` with ``m ≥ (ln|H| + ln(1/δ)) / ε`` (finite class, realisable).

    Raises:
        UsageError: when ``ε`` or ``δ`` is outside (0, 1) or ``hypotheses < 1``.
    """
    _check(epsilon, delta)
    _check_h(hypotheses)
    return math.ceil((math.log(hypotheses) + math.log(1.0 / delta)) / epsilon - 1e-12)


def epsilon_for(m: int, delta: float, hypotheses: int) -> float:
    """``ε = (ln|H| + ln(1/δ)) / m``; may exceed 1 (then the bound says nothing)."""
    _check(delta=delta)
    _check_h(hypotheses)
    if m < 1:
        raise UsageError(f"m must be >= 1, got {m}")
    return (math.log(hypotheses) + math.log(1.0 / delta)) / m


def delta_for(m: int, epsilon: float, hypotheses: int) -> float:
    """``δ = |H| · exp(-ε·m)`` capped at 1: the confidence the bound gives for ``m, ε``."""
    _check(epsilon=epsilon)
    _check_h(hypotheses)
    if m < 1:
        raise UsageError(f"m must be >= 1, got {m}")
    return min(1.0, hypotheses * math.exp(-epsilon * m))


def sample_size_occam(epsilon: float, delta: float, ln_inv_prior: float) -> int:
    """Smallest ``m`` with ``m ≥ (ln(1/P(h)) + ln(1/δ)) / ε`` (Occam form)."""
    _check(epsilon, delta)
    if ln_inv_prior < 0:
        raise UsageError(f"ln(1/P(h)) must be >= 0, got {ln_inv_prior}")
    return math.ceil((ln_inv_prior + math.log(1.0 / delta)) / epsilon - 1e-12)


def epsilon_occam(m: int, delta: float, ln_inv_prior: float) -> float:
    """``ε = (ln(1/P(h)) + ln(1/δ)) / m`` (Occam form)."""
    _check(delta=delta)
    if m < 1:
        raise UsageError(f"m must be >= 1, got {m}")
    if ln_inv_prior < 0:
        raise UsageError(f"ln(1/P(h)) must be >= 0, got {ln_inv_prior}")
    return (ln_inv_prior + math.log(1.0 / delta)) / m


_ALONE = {
    "enumerative": (
        "the enumerative search alone tried {n} expressions, so without the teacher's prior "
        "ε would be at least {floor:.3f}"
    ),
    "reader": (
        "the deterministic readers alone are a class of {n} hypotheses, so with them ε is at "
        "least {floor:.3f} (a larger reader class weakens the bound)"
    ),
}
"""Sources whose own hypothesis count floors ε, and how the statement says so."""


@dataclass(frozen=True)
class PacStatement:
    """The bound reported for one compile."""

    m: int
    hypotheses: int
    delta: float
    consistent: bool
    epsilon_finite: float | None
    ln_inv_prior: float
    epsilon_occam: float | None
    sources: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "m": self.m,
            "hypotheses": self.hypotheses,
            "delta": self.delta,
            "consistent": self.consistent,
            "epsilon_finite_class": self.epsilon_finite,
            "ln_inv_prior": round(self.ln_inv_prior, 6),
            "epsilon_occam": self.epsilon_occam,
            "sources": dict(self.sources),
            "text": self.text(),
        }

    def _breakdown(self) -> str:
        if not self.sources:
            return ""
        parts = ", ".join(f"{n} {origin}" for origin, n in sorted(self.sources.items()))
        larger = ""
        for origin, said in _ALONE.items():
            n = self.sources.get(origin, 0)
            if n and self.m:
                floor = (math.log(n) + math.log(1.0 / self.delta)) / self.m
                larger += "; " + said.format(n=n, floor=floor)
        return f" |H| counts the hypotheses the code sources examined ({parts}){larger}."

    def text(self) -> str:
        """One paragraph for the report."""
        if not self.consistent:
            return (
                f"The compiled plan is not consistent with the m={self.m} training rows "
                "(training loss > 0), so the realisable PAC bound gives no guarantee."
            )
        fin = self.epsilon_finite if self.epsilon_finite is not None else float("inf")
        occ = self.epsilon_occam if self.epsilon_occam is not None else float("inf")
        vacuous = " (vacuous: ε ≥ 1)" if min(fin, occ) >= 1 else ""
        return (
            f"Realisable finite-class bound: with |H|={self.hypotheses} hypotheses "
            f"searched and m={self.m} consistent i.i.d. examples, the true error is at most "
            f"ε={fin:.3f} with probability ≥ {1 - self.delta:.2f}. Occam form with the "
            f"edit-path prior ln(1/P(h))={self.ln_inv_prior:.2f}: ε={occ:.3f}{vacuous}. "
            f"Samples needed for ε=0.1 at this δ: "
            f"{sample_size(0.1, self.delta, self.hypotheses)} (finite class)." + self._breakdown()
        )


def pac_statement(
    *,
    m: int,
    hypotheses: int,
    delta: float,
    consistent: bool,
    ln_inv_prior: float,
    sources: Mapping[str, int] | None = None,
) -> PacStatement:
    """Build the report's PAC statement (``ε`` for both forms, ``None`` when inconsistent).

    Args:
        m: Training rows.
        hypotheses: ``|H|``, every hypothesis searched (plans scored + source hypotheses).
        delta: Failure probability.
        consistent: Whether the plan has zero training loss in every repeat.
        ln_inv_prior: ``ln(1/P(h))`` of the edit path.
        sources: Hypotheses examined per code source (``lift``, ``whole``,
            ``enumerative``...), already included in ``hypotheses``; shown in the text.
    """
    _check(delta=delta)
    hyp = max(1, hypotheses)
    by_source = dict(sources or {})
    if not consistent or m < 1:
        return PacStatement(m, hyp, delta, False, None, ln_inv_prior, None, by_source)
    return PacStatement(
        m,
        hyp,
        delta,
        True,
        epsilon_for(m, delta, hyp),
        ln_inv_prior,
        epsilon_occam(m, delta, ln_inv_prior),
        by_source,
    )
