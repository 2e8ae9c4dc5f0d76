"""Enumerative search: the smallest arithmetic expression of the inputs' quantities that fits.

The source of last resort when the teacher's code verifies nowhere (issue 9 item 7). The
quantities of each row are the numeric inputs and the numbers of its text inputs — aligned
by position when every row holds the same count, else read by the teacher's typed extraction.
Expressions over them and the constants 1, 2 and 100 with ``+ - * /`` are built bottom-up
by operator count (up to ``forward_ops``), deduplicated by their values on the training rows
(observational equivalence), and the first of the smallest size that matches every row's
gold (with the output's metric) wins; ``round(e)`` is tried for integer outputs. Larger
sizes (up to ``max_ops``) meet in the middle: ``left op right`` with both sides built
bottom-up, where the right side the golds require is computed by inverting ``op`` and looked
up among the built values — one lookup per left side and operator instead of a product of
level sizes.

``searched`` counts every expression examined (for the meet-in-the-middle sizes, every
``left op right`` the lookups cover): the PAC statement then shows the hypothesis
class this search implies, much larger than one teacher proposal. An expression must use
at least one quantity and fit every training row (at least two), which guards against a
constant or a one-row overfit.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sgde.optimize.lift import snippet
from sgde.optimize.sources.context import row_inputs
from sgde.optimize.sources.mentions import read_mentions
from sgde.optimize.sources.reading import teacher_extract
from sgde.optimize.sources.verified import Program, verify_program
from sgde.optimize.teacher import Teacher
from sgde.runtime.calls import CodeRunner
from sgde.runtime.numbers import decimals_of
from sgde.task import FieldType, Metric, TaskSpec

__all__ = ["SearchResult", "enumerative_program", "search_expressions", "verify_found"]

_CONSTANTS = (1, 2, 100)


@dataclass(frozen=True)
class SearchResult:
    """The outcome of :func:`search_expressions`.

    Attributes:
        expression: Python expression over the names (``None``: nothing fits).
        ops: Its operator count.
        searched: Expressions examined (hypotheses).
        fits: Distinct fitting expressions of the smallest size (ambiguity).
    """

    expression: str | None
    ops: int
    searched: int
    fits: int


@dataclass(frozen=True)
class _Expr:
    text: str
    values: tuple[float, ...]
    uses: bool


def _apply(op: str, a: float, b: float) -> float | None:
    try:
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        else:
            if b == 0:
                return None
            r = a / b
    except (OverflowError, ZeroDivisionError):
        return None
    return r if math.isfinite(r) and abs(r) < 1e15 else None


def search_expressions(
    names: Sequence[str],
    rows: Sequence[Sequence[float]],
    golds: Sequence[float],
    *,
    fits: Callable[[int, float], bool] | None = None,
    max_ops: int = 3,
    constants: Sequence[float] = _CONSTANTS,
    max_hypotheses: int = 1_000_000,
    integer: bool = False,
    max_lookups: int = 5_000_000,
    forward_ops: int = 3,
) -> SearchResult:
    """The smallest expression over ``names`` whose value fits every row's gold.

    Args:
        names: Variable names (``rows[i][k]`` is the value of ``names[k]`` in row ``i``).
        rows: Per row, the variable values.
        golds: Per row, the gold value.
        fits: ``fits(row, value)``, the metric's judgement (default: within 1e-6, or at the
            gold's decimals).
        max_ops: Most operators in an expression.
        constants: Constants available besides the variables.
        max_hypotheses: Stop after examining this many expressions.
        integer: Also try ``round(e)`` (an integer output).
        max_lookups: Cap on the meet-in-the-middle stage's inversions (sizes above the
            forward levels; see :func:`_meet_in_middle`).
        forward_ops: Sizes built bottom-up; larger ones (up to ``max_ops``, as far as two
            forward expressions under one operator reach) meet in the middle.
    """
    m = len(golds)
    if m < 2 or any(len(r) != len(names) for r in rows) or len(rows) != m:
        return SearchResult(None, 0, 0, 0)
    # Strict closeness: a rounded gold (two or more decimals) admits rounding at its last
    # decimal; otherwise only float noise — rounding to integers is the explicit round(e).
    tol = [
        0.5 * 10 ** (-decimals_of(g)) if decimals_of(g) >= 2 else 1e-6 * max(1.0, abs(g))
        for g in golds
    ]

    def near(values: tuple[float, ...]) -> bool:
        return all(abs(v - g) <= t * 1.0000001 for v, g, t in zip(values, golds, tol, strict=True))

    def check(values: tuple[float, ...]) -> bool:
        return near(values) and (fits is None or all(fits(i, v) for i, v in enumerate(values)))

    seen: set[tuple[float, ...]] = set()
    levels: list[list[_Expr]] = [[]]
    searched = 0
    found: list[str] = []

    def consider(expr: _Expr) -> None:
        nonlocal searched
        searched += 1
        key = tuple(round(v, 9) for v in expr.values)
        if key in seen:
            return
        seen.add(key)
        levels[-1].append(expr)
        if not expr.uses:
            return
        if check(expr.values):
            found.append(expr.text)
        elif integer:
            searched += 2
            whole = _whole(expr.text, expr.values, check)
            if whole is not None:
                found.append(whole)

    for k, name in enumerate(names):
        consider(_Expr(name, tuple(float(r[k]) for r in rows), True))
    for c in constants:
        consider(_Expr(repr(c), tuple(float(c) for _ in range(m)), False))
    ops_found = 0
    for ops in range(1, min(max_ops, forward_ops) + 1):
        if found:
            break
        ops_found = ops
        levels.append([])
        for a in range(ops):
            b = ops - 1 - a
            for i, left in enumerate(levels[a]):
                for j, right in enumerate(levels[b]):
                    if searched >= max_hypotheses:
                        break
                    for op in ("+", "-", "*", "/"):
                        if op in "+*" and (a > b or (a == b and j < i)):
                            continue
                        values = []
                        for x, y in zip(left.values, right.values, strict=True):
                            r = _apply(op, x, y)
                            if r is None:
                                break
                            values.append(r)
                        if len(values) != m:
                            continue
                        consider(
                            _Expr(
                                f"({left.text} {op} {right.text})",
                                tuple(values),
                                left.uses or right.uses,
                            )
                        )
    top = len(levels) - 1
    if not found and max_ops > top and top >= 1 and searched < max_hypotheses:
        # The forward levels are complete: meet in the middle for the larger sizes.
        hit, implied = _meet_in_middle(levels, golds, check, max_ops, max_lookups, integer)
        searched += implied
        if hit is not None:
            found.append(hit[0])
            ops_found = hit[1]
    if not found:
        return SearchResult(None, 0, searched, 0)
    best = found[0]
    if best.startswith("(") and best.endswith(")"):
        best = best[1:-1]
    return SearchResult(best, ops_found if len(levels) > 1 else 0, searched, len(found))


def _whole(
    text: str, values: Sequence[float], check: Callable[[tuple[float, ...]], bool]
) -> str | None:
    """``text`` made a whole number, floored (whole items: a word problem's usual rule),
    else rounded, when that fits; None when neither does."""
    if check(tuple(float(math.floor(v)) for v in values)):
        return f"int({text} // 1)"
    if check(tuple(float(round(v)) for v in values)):
        return f"round({text})"
    return None


def _key(values: Sequence[float]) -> tuple[float, ...]:
    """A value vector's lookup key: 9 significant digits, so that an inverted vector (float
    noise in the last bits) meets the forward one."""
    return tuple(float(f"{v:.9g}") for v in values)


def _inverses(
    golds: Sequence[float], left: Sequence[float]
) -> list[tuple[str, bool, tuple[float, ...]]]:
    """Per top operator, ``(op, left first, right)``: the right-hand values that make
    ``left op right`` (or ``right op left``) equal the golds."""
    out: list[tuple[str, bool, tuple[float, ...]]] = []
    pairs = list(zip(left, golds, strict=True))
    out.append(("+", True, tuple(g - x for x, g in pairs)))
    out.append(("-", True, tuple(x - g for x, g in pairs)))
    out.append(("-", False, tuple(g + x for x, g in pairs)))
    if all(x != 0 for x in left):
        out.append(("*", True, tuple(g / x for x, g in pairs)))
        out.append(("/", False, tuple(g * x for x, g in pairs)))
        if all(g != 0 for g in golds):
            out.append(("/", True, tuple(x / g for x, g in pairs)))
    return out


def _splits(top: int, max_ops: int) -> Iterator[tuple[int, int, int]]:
    """``(total, left ops, right ops)`` of the middle sizes: ``top + 1`` to ``max_ops``
    operators, one of them on top, both sides at most ``top`` (built bottom-up)."""
    for total in range(top + 1, max_ops + 1):
        for a in range(total):
            if a <= top and total - 1 - a <= top:
                yield total, a, total - 1 - a


def _lefts(
    levels: Sequence[Sequence[_Expr]], max_ops: int, max_lookups: int
) -> Iterator[tuple[int, int, _Expr]]:
    """``(total, right ops, left side)`` for every left side of the middle sizes, until
    ``max_lookups`` (six per left side: one per inverted operator) are spent."""
    lookups = 0
    for total, a, b in _splits(len(levels) - 1, max_ops):
        for left in levels[a]:
            lookups += 6
            if lookups > max_lookups:
                return
            yield total, b, left


def _joined(left: _Expr, right: _Expr, op: str, left_first: bool) -> tuple[str, list[float]] | None:
    """``left op right`` (or ``right op left``) as text and values; None when it uses no
    quantity or is undefined on some row."""
    if not (left.uses or right.uses):
        return None
    x, y = (left, right) if left_first else (right, left)
    values = [_apply(op, p, q) for p, q in zip(x.values, y.values, strict=True)]
    if any(v is None for v in values):
        return None
    return f"({x.text} {op} {y.text})", [v for v in values if v is not None]


def _meet_in_middle(
    levels: Sequence[Sequence[_Expr]],
    golds: Sequence[float],
    check: Callable[[tuple[float, ...]], bool],
    max_ops: int,
    max_lookups: int,
    integer: bool = False,
) -> tuple[tuple[str, int] | None, int]:
    """Expressions of ``len(levels)`` to ``max_ops`` operators as ``left op right`` with both
    sides in the forward levels: for each left side and top operator, the right side the golds
    require is computed by inverting the operator and looked up among the forward values.

    A forward search of one more size multiplies its work by the level sizes; this costs
    one lookup per left side and operator instead. Exact golds (a rounded decimal gold's
    tolerance is not inverted); whole numbers below.

    With ``integer``, a second pass admits a whole-number gold reached by flooring or
    rounding (:func:`_whole`): the right side must lie in the interval the golds allow,
    found by bisection on the row whose gold is largest.

    Returns ``((expression, operators) or None, hypotheses implied)``: the hypotheses count
    every ``left op right`` of the sizes searched, the class the lookups cover, for the PAC
    statement.
    """
    index: dict[tuple[float, ...], tuple[int, _Expr]] = {}
    for ops, level in enumerate(levels):
        for expr in level:
            index.setdefault(_key(expr.values), (ops, expr))
    implied = sum(
        len(levels[a]) * len(levels[b]) * 6 for _, a, b in _splits(len(levels) - 1, max_ops)
    )
    for total, b, left in _lefts(levels, max_ops, max_lookups):
        for op, left_first, need in _inverses(golds, left.values):
            hit = index.get(_key(need))
            joined = None if hit is None or hit[0] > b else _joined(left, hit[1], op, left_first)
            if joined is not None and check(tuple(joined[1])):
                return (joined[0], total), implied
    if integer:
        return _whole_in_middle(levels, golds, check, max_ops, max_lookups), implied
    return None, implied


def _span(one: Sequence[float], two: Sequence[float]) -> tuple[list[float], list[float]]:
    """Per row, the interval between two bounds, widened by float noise."""
    lo = [min(p, q) - 1e-9 * max(1.0, abs(p), abs(q)) for p, q in zip(one, two, strict=True)]
    hi = [max(p, q) + 1e-9 * max(1.0, abs(p), abs(q)) for p, q in zip(one, two, strict=True)]
    return lo, hi


def _whole_in_middle(
    levels: Sequence[Sequence[_Expr]],
    golds: Sequence[float],
    check: Callable[[tuple[float, ...]], bool],
    max_ops: int,
    max_lookups: int,
) -> tuple[str, int] | None:
    """The interval pass of :func:`_meet_in_middle`: golds in ``[g - 0.5, g + 1)``."""
    row = max(range(len(golds)), key=lambda i: abs(golds[i]))
    entries = sorted(
        ((e.values[row], ops, e) for ops, level in enumerate(levels) for e in level),
        key=lambda t: t[0],
    )
    keys = [t[0] for t in entries]
    low = [g - 0.5 for g in golds]
    high = [g + 1.0 for g in golds]
    for total, b, left in _lefts(levels, max_ops, max_lookups):
        other = {(op, first): need for op, first, need in _inverses(high, left.values)}
        for op, left_first, one in _inverses(low, left.values):
            two = other.get((op, left_first))
            if two is None:
                continue
            lo, hi = _span(one, two)
            start, stop = bisect_left(keys, lo[row]), bisect_right(keys, hi[row])
            for _, ops, right in entries[start : min(stop, start + 64)]:
                if ops > b or any(not lo[i] <= v <= hi[i] for i, v in enumerate(right.values)):
                    continue
                joined = _joined(left, right, op, left_first)
                whole = None if joined is None else _whole(joined[0], joined[1], check)
                if whole is not None:
                    return whole, total
    return None


def _quantities(task: TaskSpec, inputs: Mapping[str, Any]) -> list[tuple[str, float, str]]:
    """``(name hint, value, context)`` of every quantity of a row, in field/text order."""
    out: list[tuple[str, float, str]] = []
    for name, ftype in task.inputs.items():
        value = inputs.get(name)
        if ftype.kind in ("integer", "number") and isinstance(value, (int, float)):
            out.append((name, float(value), ""))
        elif ftype.kind == "string" and isinstance(value, str):
            tm = read_mentions(value)
            for m in tm.numbers:
                after = [w.value for w in tm.words if w.start >= m.end][:1]
                hint = after[0].lower() if after else "number"
                val = m.value / 100 if m.percent else m.value
                out.append((hint, float(val), snippet(value, m.start, m.end)))
    return out


async def verify_found(
    sandbox: CodeRunner,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    metric: Metric,
    code: str,
    values: Sequence[Mapping[str, Any] | None],
    *,
    source: str,
    found: str,
    searched: int,
    log: Callable[..., None],
) -> int | None:
    """Verify a searched program in the sandbox on every training row and log the outcome
    (one place for the numeric and the text searches). Returns the rows verified when it is
    every row, else ``None``."""
    checks = await verify_program(sandbox, task, rows, metric, code, list(values))
    verified = sum(c is None for c in checks)
    log(
        source,
        f"{found} ({searched} examined), verified on {verified}/{len(rows)} rows",
        searched=searched,
    )
    return verified if verified == len(rows) else None


async def enumerative_program(
    teacher: Teacher,
    sandbox: CodeRunner,
    task: TaskSpec,
    rows: Sequence[Mapping[str, Any]],
    metric: Metric,
    *,
    budget: Any,
    log: Callable[..., None],
) -> Any:
    """A :class:`~sgde.optimize.sources.programs.Program` of origin ``enumerative``, or None.

    Applicable when every output is a number and the rows hold quantities.
    """

    outputs = task.outputs
    if any(t.kind not in ("integer", "number") for t in outputs.values()):
        log("enumerative", "not applicable: an output is not a number")
        return None
    per_row = [_quantities(task, row_inputs(task, r)) for r in rows]
    if not per_row or not per_row[0]:
        log("enumerative", "not applicable: the inputs hold no quantity")
        return None
    seed = per_row[0]
    names: list[str] = []
    for k, (hint, _, ctx) in enumerate(seed):
        if not ctx and hint in task.inputs:
            names.append(hint)
            continue
        base = "".join(ch if ch.isalnum() else "_" for ch in hint).strip("_") or "number"
        names.append(f"q{k + 1}_{base}"[:32])
    ftypes = {
        n: FieldType(kind="integer" if float(v).is_integer() else "number")
        for n, (_, v, _) in zip(names, seed, strict=True)
    }
    descriptions = {
        n: f'the number in "{ctx}"' if ctx else f"the input {hint}"
        for n, (hint, _, ctx) in zip(names, seed, strict=True)
    }
    values: list[dict[str, Any] | None] = []
    seed_values = {n: v for n, (_, v, _) in zip(names, seed, strict=True)}
    seed_hints = [q[0] for q in seed]
    for i, quantities in enumerate(per_row):
        # By position only when the words after the numbers match too (else the row may
        # give the same quantities in another order, as another phrasing does).
        if len(quantities) == len(seed) and [q[0] for q in quantities] == seed_hints:
            values.append({n: q[1] for n, q in zip(names, quantities, strict=True)})
            continue
        got = await teacher_extract(
            teacher,
            task,
            ftypes,
            descriptions,
            row_inputs(task, rows[0]),
            seed_values,
            row_inputs(task, rows[i]),
        )
        values.append(None if got is None else {n: float(got[n]) for n in names})
    if any(v is None for v in values):
        log("enumerative", "the quantities of some rows could not be read")
        return None
    table = [[float(v[n]) for n in names] for v in values if v is not None]
    exprs: dict[str, str] = {}
    searched = 0
    for out_name, ftype in outputs.items():
        golds = []
        for r in rows:
            try:
                golds.append(float(ftype.coerce(r.get(out_name))))
            except (ValueError, TypeError):
                log("enumerative", f"not applicable: gold {out_name!r} is not a number")
                return None

        def fits(i: int, v: float, ftype: FieldType = ftype, name: str = out_name) -> bool:
            return ftype.correct(v, rows[i].get(name))

        result = search_expressions(
            names,
            table,
            golds,
            fits=fits,
            max_ops=budget.enumerate_max_ops,
            max_hypotheses=budget.enumerate_max_hypotheses,
            integer=ftype.kind == "integer",
        )
        searched += result.searched
        if result.expression is None:
            log(
                "enumerative",
                f"no expression of <= {budget.enumerate_max_ops} operators "
                f"fits {out_name!r} ({result.searched} examined)",
                searched=result.searched,
            )
            return None
        exprs[out_name] = result.expression
    used = [n for n in names if any(re.search(rf"\b{n}\b", e) for e in exprs.values())]
    body = ", ".join(f"{o!r}: {e}" for o, e in exprs.items())
    code = f"def run({', '.join(used)}):\n    return {{{body}}}\n"
    final = [
        {
            n: int(v[n]) if ftypes[n].kind == "integer" and float(v[n]).is_integer() else v[n]
            for n in used
        }
        if v is not None
        else None
        for v in values
    ]
    verified = await verify_found(
        sandbox,
        task,
        rows,
        metric,
        code,
        final,
        source="enumerative",
        found="; ".join(f"{o} = {e}" for o, e in exprs.items()),
        searched=searched,
        log=log,
    )
    if verified is None:
        return None
    return Program(
        code=code,
        params={n: ftypes[n] for n in used},
        values=final,
        raw_inputs={n: n for n in used if n in task.inputs},
        # where the number stands comes with the contexts (values masked), not here
        descriptions={
            n: f'the number written before "{hint}"'
            if ctx and hint != "number"
            else descriptions[n]
            for n, (hint, _, ctx) in zip(names, seed, strict=True)
            if n in used
        },
        origin="enumerative",
        searched=searched,
        verified_rows=verified,
    )
