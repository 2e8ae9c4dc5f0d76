"""The scalars loop rolling may group (:func:`~sgde.optimize.sources.rolling.roll_groups`).

Besides the lifted numbers, a block may hold numbers the lift did not make params: a literal
it kept as structure (``2 * 10``: ``2`` in an expression), each mention of a number that
the lift merged into one param because its value repeats (``2 mugs and 2 plates``), and the
numbers of records that each matched a run of the text (``[(4, 36.39), (2, 5.64)]``). They
are candidates only: a number that ends up in no block is put back as it was written.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence, Set

from sgde.optimize.sources.rolling import ScalarParam, key_of

__all__ = ["loose_scalars", "roll_candidates"]

_Key = tuple[int, int, int, int]


def loose_scalars(
    code: str,
    lifted: Sequence[ScalarParam],
    numbers: dict[str, list[int | float]],
    covered: Set[tuple[str, int]] = frozenset(),
    entry: str = "solution",
) -> list[ScalarParam]:
    """The code's number literals the lift left as structure (``2 * 10``: the ``2``) that
    equal a text number no lifted param stands for: candidates for a block, never lifted
    alone. ``numbers`` gives each text input's numbers in order; ``covered`` the
    ``(input, rank)`` of those another lifted param (a list) stands for."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return []
    func = next((s for s in tree.body if isinstance(s, ast.FunctionDef) and s.name == entry), None)
    if func is None:
        return []
    known = {k for p in lifted for k in p.keys}
    taken = {(p.input, p.index) for p in lifted} | set(covered)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {p.name for p in lifted}
    out: list[ScalarParam] = []
    consts = [
        n
        for n in ast.walk(func)
        if isinstance(n, ast.Constant)
        and isinstance(n.value, (int, float))
        and not isinstance(n.value, bool)
        and key_of(n) not in known
    ]
    for const in sorted(consts, key=key_of):
        value = const.value
        assert isinstance(value, (int, float))
        spot = next(
            (
                (source, i)
                for source, values in numbers.items()
                for i, v in enumerate(values)
                if (source, i) not in taken and v == value
            ),
            None,
        )
        if spot is None:
            continue
        taken.add(spot)
        name, k = f"value_{spot[1] + 1}", 2
        while name in names:
            name, k = f"value_{spot[1] + 1}_{k}", k + 1
        names.add(name)
        out.append(ScalarParam(name, spot[0], spot[1], value, (key_of(const),)))
    return out


def _records(
    tree: ast.Module, runs: Sequence[tuple[_Key, str, int]], names: set[str]
) -> tuple[list[ScalarParam], set[tuple[str, int]]]:
    """Lifted runs that are records of a display (``[(4, 36.39), (2, 5.64)]``: each tuple
    matched a run of two numbers) as scalars, and the text numbers the other runs cover."""
    nodes = {key_of(n): n for n in ast.walk(tree) if isinstance(n, (ast.List, ast.Tuple))}
    inner = {
        id(e)
        for n in nodes.values()
        for e in n.elts
        if isinstance(e, (ast.List, ast.Tuple)) and len(n.elts) >= 2
    }
    out: list[ScalarParam] = []
    covered: set[tuple[str, int]] = set()
    for j, (key, source, index) in enumerate(runs):
        node = nodes.get(key)
        if node is None or id(node) not in inner:
            covered.update((source, index + i) for i in range(len(node.elts) if node else 0))
            continue
        for i, elt in enumerate(node.elts):
            if isinstance(elt, ast.Constant) and isinstance(elt.value, (int, float)):
                name, k = f"record_{j + 1}_{i + 1}", 2
                while name in names:
                    name, k = f"record_{j + 1}_{i + 1}_{k}", k + 1
                names.add(name)
                out.append(ScalarParam(name, source, index + i, elt.value, (key_of(elt),)))
    return out, covered


def roll_candidates(
    code: str,
    lifted: Sequence[ScalarParam],
    numbers: dict[str, list[int | float]],
    runs: Sequence[tuple[_Key, str, int]] = (),
) -> list[ScalarParam]:
    """The scalars :func:`roll_groups` may group: the lifted ones; a lifted number written
    at as many sites as the text mentions it, split into one per mention (in order: ``2 mugs
    and 2 plates``, ``2 * 5.0 + 2 * 3.5``); the numbers of lifted runs that are records of a
    display (``runs``: each list site's key, text input and first rank); and the
    :func:`loose_scalars`."""
    out: list[ScalarParam] = []
    for p in lifted:
        spots = [i for i, v in enumerate(numbers.get(p.input, [])) if v == p.value]
        if len(p.keys) < 2 or len(spots) != len(p.keys) or p.index != spots[0]:
            out.append(p)
            continue
        for j, (key, spot) in enumerate(zip(sorted(p.keys), spots, strict=True)):
            name = p.name if j == 0 else f"{p.name}_{j + 1}"
            out.append(ScalarParam(name, p.input, spot, p.value, (key,)))
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError):
        return out
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {p.name for p in out}
    records, covered = _records(tree, runs, names)
    out += records
    return out + loose_scalars(code, out, numbers, covered)
