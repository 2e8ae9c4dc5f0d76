"""Adversarial synthesis: new values for a template's parameters, labelled in the sandbox.

For item ``k`` of a set, a magnitude class is chosen in turn (:data:`MAGNITUDE_CLASSES`:
1-2 digits, 3-4, 5-6, 7-8 — "10^7+" — and 6-8-digit values whose digits are 5-9, so sums and
products carry), values are drawn for every parameter and kept only if they satisfy the
template's constraints:

* ``integral`` / ``decimals``: integers where the originals were; otherwise exactly the
  decimals written in the original (money keeps cents);
* ``positive``: > 0 where the originals were (in fact at least 2 for integers, so the text
  never says "1 eggs"); percentages stay at most 100 where GSM8K's was;
* ``distinct``: all values of an item differ;
* ``nonnegative:<var>``: intermediates (the code's assigned variables, traced by running an
  instrumented copy of the code) that were >= 0 for the reference values stay >= 0;
* ``integral:<var>``: intermediates that were integers stay integers (no 2.5 people);
* ``answer``: integral where the reference answer was, else at most ``answer_decimals``
  decimals; magnitudes stay below 10^15 so floats are exact;
* ``unique``: no two items (nor an excluded question) share a text;
* ``code-error``: the code runs (no division by zero, no timeout).

Candidates are evaluated in batches with one sandbox call each. Randomness comes from a
numpy ``Generator`` seeded with ``SeedSequence([seed, H(template id), H(split)])``, and the
number of draws depends only on outcomes, so the same seed gives the same rows — and, through
:func:`~sgde.runtime.jsonl.write_jsonl`, a byte-identical file.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sgde._optional import require
from sgde.errors import DataError, SandboxError, UsageError
from sgde.evaluation.gsm._align import BATCH_ENTRY, batch_program
from sgde.evaluation.gsm.templates import Param, Template
from sgde.runtime.calls import CodeRunner
from sgde.runtime.sync import run_sync

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "MAGNITUDE_CLASSES",
    "MagnitudeClass",
    "check_values",
    "synthesise",
    "synthesise_async",
]

_MAX_ABS = 1e15
_MAX_PERCENT = 99
_SMOOTH = 2**6 * 3**3 * 5**3 * 7  # divisors of this are "round" factors worth keeping


@dataclass(frozen=True)
class MagnitudeClass:
    """A range of integer digits for sampled values.

    Attributes:
        name: Short label stored on each row (``"small"``, ..., ``"carry"``).
        min_digits: Fewest integer digits.
        max_digits: Most integer digits.
        carry: Draw digits from 5-9 so that sums and products carry.
    """

    name: str
    min_digits: int
    max_digits: int
    carry: bool = False


MAGNITUDE_CLASSES: tuple[MagnitudeClass, ...] = (
    MagnitudeClass("small", 1, 2),
    MagnitudeClass("medium", 3, 4),
    MagnitudeClass("large", 5, 6),
    MagnitudeClass("huge", 7, 8),
    MagnitudeClass("carry", 6, 8, carry=True),
)


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def _rng(template_id: str, seed: int, split: str) -> np.random.Generator:
    # numpy is the optional ``report`` extra: imported when data is drawn, not at start-up.
    numpy = require("numpy", what="synthesising GSM-Hard data (sgde synth, bench, demo)")
    entropy = [seed, _stable_hash(template_id), _stable_hash(split)]
    rng: np.random.Generator = numpy.random.default_rng(numpy.random.SeedSequence(entropy))
    return rng


def _draw_int(rng: np.random.Generator, digits: int, carry: bool) -> int:
    low = 5 if carry else 0
    first = int(rng.integers(max(low, 1), 10))
    rest = [int(rng.integers(low, 10)) for _ in range(digits - 1)]
    return int(str(first) + "".join(str(d) for d in rest))


def _factor(p: Param) -> int:
    """A divisor of the reference value made of small primes (40 -> 40, 75 -> 75, 7 -> 7).

    Drawing multiples of it keeps divisions that came out even for the original values
    (40 jewels / 2) likely to come out even again.
    """
    reference = p.gsm8k if p.gsm8k is not None else p.original
    if not p.integral or reference < 2:
        return 1
    return math.gcd(int(reference), _SMOOTH)


def _draw_value(
    p: Param, digits: int, carry: bool, rng: np.random.Generator, aligned: bool
) -> float | int:
    scale = int(10**p.decimals)
    reference = p.gsm8k if p.gsm8k is not None else p.original
    if p.percent and reference <= 100:
        whole = int(rng.integers(2, _MAX_PERCENT + 1))
    else:
        whole = max(_draw_int(rng, digits, carry), 2)
        factor = _factor(p) if aligned else 1
        if factor > 1 and whole > factor:
            whole -= whole % factor
    if p.integral:
        return whole
    frac = int(rng.integers(1, scale))
    return round(whole + frac / scale, p.decimals)


def _draw_values(
    template: Template, cls: MagnitudeClass, rng: np.random.Generator
) -> dict[str, float | int]:
    """One candidate: one parameter (at least) in the class's digit range, the others at
    most as long, so products of several parameters do not all explode together."""
    lead = int(rng.integers(0, len(template.params)))
    aligned = bool(rng.integers(0, 2))
    values: dict[str, float | int] = {}
    for i, p in enumerate(template.params):
        low = cls.min_digits if i == lead else 1
        digits = int(rng.integers(low, cls.max_digits + 1))
        values[p.name] = _draw_value(p, digits, cls.carry, rng, aligned)
    return values


def check_values(template: Template, values: Mapping[str, float | int]) -> str | None:
    """Check the parameter constraints of one candidate (no code run).

    Returns:
        The name of the first constraint broken, or None.
    """
    for p in template.params:
        v = values[p.name]
        if p.integral and (not isinstance(v, int) or isinstance(v, bool)):
            return f"integral:{p.name}"
        if not p.integral and abs(round(v, p.decimals) - v) > 1e-9:
            return f"decimals:{p.name}"
        if p.positive and v <= 0:
            return f"positive:{p.name}"
    if len(set(values.values())) != len(values):
        return "distinct"
    return None


def _check_trace(template: Template, outcome: Mapping[str, Any]) -> str | None:
    if "error" in outcome:
        return "code-error"
    result = float(outcome["result"])
    variables: Mapping[str, Any] = outcome.get("vars") or {}
    for inter in template.intermediates:
        value = variables.get(inter.name)
        if value is None:
            continue
        v = float(value)
        if abs(v) >= _MAX_ABS:
            return f"magnitude:{inter.name}"
        if inter.nonnegative and v < 0:
            return f"nonnegative:{inter.name}"
        if inter.integral and abs(v - round(v)) > 1e-6:
            return f"integral:{inter.name}"
    if abs(result) >= _MAX_ABS:
        return "magnitude:answer"
    reference = template.gsm8k_answer if template.reference == "gsm8k" else template.target
    if reference is not None and reference >= 0 and result < 0:
        return "nonnegative:answer"
    if template.answer_integral:
        if abs(result - round(result)) > 1e-6:
            return "answer-integral"
    elif abs(round(result, template.answer_decimals) - result) > 1e-6:
        return "answer-decimals"
    return None


def _answer(template: Template, result: float) -> float | int:
    if template.answer_integral or abs(result - round(result)) <= 1e-6:
        return round(result)
    return round(result, template.answer_decimals)


async def synthesise_async(
    template: Template,
    *,
    n: int,
    seed: int,
    sandbox: CodeRunner,
    split: str = "test",
    exclude: Collection[str] = (),
    max_tries: int = 2000,
    batch_size: int = 32,
    thousands: bool = False,
) -> list[dict[str, Any]]:
    """Sample ``n`` labelled rows from ``template`` (see the module docstring).

    Args:
        template: The template.
        n: Rows to produce.
        seed: A non-negative integer; same seed (and split) -> same rows.
        sandbox: Where the template code runs (``SandboxPool``).
        split: Salt for the random stream (``"test"``, ``"train"``) and part of row ids.
        exclude: Questions that must not be produced (e.g. the test set when sampling
            training rows).
        max_tries: Candidates per row before giving up.
        batch_size: Candidates evaluated per sandbox call.
        thousands: Write numbers with thousands separators.

    Returns:
        Rows ``{"id", "question", "answer", "template_id", "seed", "values", "magnitude",
        "split"}``; ``answer`` is an ``int`` when integral.

    Raises:
        UsageError: for ``n < 0`` or a negative seed.
        DataError: when no candidate satisfies the constraints within ``max_tries``; the
            message names the constraint that failed most often.
        SandboxError: when the sandbox itself fails (not a candidate's error).
    """
    if n < 0:
        raise UsageError(f"n must be >= 0, got {n}")
    if seed < 0:
        raise UsageError(f"seed must be a non-negative integer, got {seed}")
    rng = _rng(template.id, seed, split)
    code = batch_program(template.code, template.entry)
    seen = set(exclude)
    rows: list[dict[str, Any]] = []
    for k in range(n):
        cls = MAGNITUDE_CLASSES[k % len(MAGNITUDE_CLASSES)]
        failures: Counter[str] = Counter()
        tries = 0
        row: dict[str, Any] | None = None
        while row is None and tries < max_tries:
            batch: list[dict[str, float | int]] = []
            while len(batch) < batch_size and tries < max_tries:
                tries += 1
                values = _draw_values(template, cls, rng)
                problem = check_values(template, values)
                if problem is None:
                    question = template.render(values, thousands=thousands)
                    if question in seen:
                        problem = "unique"
                if problem is not None:
                    failures[problem] += 1
                    continue
                batch.append(values)
            if not batch:
                continue
            outcomes = await _evaluate(sandbox, code, batch)
            for values, outcome in zip(batch, outcomes, strict=True):
                problem = _check_trace(template, outcome)
                if problem is not None:
                    failures[problem] += 1
                    continue
                question = template.render(values, thousands=thousands)
                if question in seen:
                    failures["unique"] += 1
                    continue
                row = {
                    "id": f"{template.id}-{split}-s{seed}-{k:04d}",
                    "question": question,
                    "answer": _answer(template, float(outcome["result"])),
                    "template_id": template.id,
                    "seed": seed,
                    "split": split,
                    "magnitude": cls.name,
                    "values": dict(values),
                }
                seen.add(question)
                break
        if row is None:
            worst, count = failures.most_common(1)[0] if failures else ("none", 0)
            raise DataError(
                f"template {template.id}: no values for item {k} ({cls.name} magnitudes) "
                f"satisfied the constraints in {max_tries} tries; constraint failed most "
                f"often: {worst} ({count} of {tries})",
                hint="try another template (`sgde synth --list`) or a larger --max-tries",
            )
        rows.append(row)
    return rows


async def _evaluate(
    sandbox: CodeRunner, code: str, batch: list[dict[str, float | int]]
) -> list[dict[str, Any]]:
    try:
        out = await sandbox.call(code, {"rows": batch}, entry=BATCH_ENTRY)
    except SandboxError as exc:
        if exc.rule in ("timeout", "memory-limit", "output-too-large"):
            return [{"error": str(exc)} for _ in batch]
        raise
    if not isinstance(out, list) or len(out) != len(batch):
        raise SandboxError(
            f"batch evaluation returned {type(out).__name__}, expected {len(batch)} results",
            rule="runtime-error",
        )
    return [o if isinstance(o, dict) else {"error": repr(o)} for o in out]


def synthesise(
    template: Template,
    *,
    n: int,
    seed: int,
    sandbox: CodeRunner | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """Synchronous :func:`synthesise_async`; opens a sandbox pool when none is given.

    Must not be called from a running event loop (use :func:`synthesise_async` there).
    """

    async def main() -> list[dict[str, Any]]:
        if sandbox is not None:
            return await synthesise_async(template, n=n, seed=seed, sandbox=sandbox, **options)
        from sgde.runtime.sandbox import SandboxPool

        async with SandboxPool(workers=1) as pool:
            return await synthesise_async(template, n=n, seed=seed, sandbox=pool, **options)

    return run_sync(main(), name="synthesise", use_instead="synthesise_async(...)")
