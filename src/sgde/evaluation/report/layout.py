"""A layered (Sugiyama-style) layout for plan pictures: layers, order, coordinates, routes.

Why hand-written rather than a library: the one pure-Python Sugiyama implementation on PyPI
(``grandalf``) has had no release since January 2023, and graphviz would be a system binary
that a pip install cannot bring. Plans are small (tens of nodes), so the classic steps fit in
one short module with no dependency and are easy to test:

1. **Layering** by longest path from the sources (the inputs box is layer 0, the outputs box
   the last layer); edges that close a cycle (never in a valid plan) are reversed for layout.
2. **Dummy nodes** on every edge that spans more than one layer, so each drawn segment joins
   two *adjacent* layers.
3. **Ordering** within layers by barycentric sweeps (down, then up), keeping the order with the
   fewest crossings.
4. **Coordinates**: layers are columns (left to right), slots within a column are stacked with
   a fixed pitch and centred. Every box of a column has the column's width.
5. **Routes**: an edge leaves its source at the right side and enters its target at the left
   side (ports spread over the box height when several edges share a side); it crosses a
   column that holds a dummy of it horizontally, at the dummy's slot. So every slanted segment
   lies in the gap *between* two columns, where there are no boxes: edges never pass through
   boxes.

Units are inches: the figure maps one unit to one inch, so text sizes (points) and box sizes
agree without measuring fonts at layout time.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Box", "Layout", "Route", "layered_layout"]

CHAR_WIDTH_IN = 0.075
"""Width of one character of the box text (8 pt sans-serif, generous), inches."""
LINE_HEIGHT_IN = 0.16
"""Height of one line of the box text, inches."""
BOX_PAD_IN = 0.16
COLUMN_GAP_IN = 1.5
SLOT_GAP_IN = 0.45
SWEEPS = 8


@dataclass(frozen=True)
class Box:
    """A node's box: centre, size (inches) and its text lines."""

    name: str
    x: float
    y: float
    width: float
    height: float
    lines: tuple[str, ...]

    @property
    def left(self) -> float:
        return self.x - self.width / 2

    @property
    def right(self) -> float:
        return self.x + self.width / 2

    @property
    def bottom(self) -> float:
        return self.y - self.height / 2

    @property
    def top(self) -> float:
        return self.y + self.height / 2


@dataclass(frozen=True)
class Route:
    """An edge drawn as a polyline from ``source`` to ``target``."""

    source: str
    target: str
    label: str
    points: tuple[tuple[float, float], ...]


@dataclass
class Layout:
    """Boxes, routes, and the drawing's extent (``xmin, xmax, ymin, ymax``)."""

    layers: list[list[str]]
    boxes: dict[str, Box] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)
    extent: tuple[float, float, float, float] = (0.0, 1.0, 0.0, 1.0)


def _break_cycles(names: Sequence[str], edges: Sequence[tuple[str, str]]) -> set[int]:
    """Indices of edges that close a cycle (found by depth-first search)."""
    out: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for i, (s, t) in enumerate(edges):
        out[s].append((i, t))
    state: dict[str, int] = {}
    back: set[int] = set()
    for root in names:
        if root in state:
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        state[root] = 1
        while stack:
            node, k = stack[-1]
            if k < len(out[node]):
                stack[-1] = (node, k + 1)
                i, nxt = out[node][k]
                if state.get(nxt) == 1:
                    back.add(i)
                elif nxt not in state:
                    state[nxt] = 1
                    stack.append((nxt, 0))
            else:
                state[node] = 2
                stack.pop()
    return back


def _layers(
    names: Sequence[str], edges: Sequence[tuple[str, str]], first: str, last: str
) -> dict[str, int]:
    preds: dict[str, list[str]] = defaultdict(list)
    for s, t in edges:
        preds[t].append(s)
    layer: dict[str, int] = {}

    def visit(name: str) -> int:
        # Iterative longest path (the graph is acyclic here).
        stack = [name]
        while stack:
            node = stack[-1]
            if node in layer:
                stack.pop()
                continue
            pending = [p for p in preds[node] if p not in layer]
            if pending:
                stack.extend(pending)
                continue
            base = 0 if node == first else 1
            layer[node] = max([base, *(layer[p] + 1 for p in preds[node])])
            stack.pop()
        return layer[name]

    for name in names:
        if name != last:
            visit(name)
    layer[first] = 0
    layer[last] = max([1, *(v + 1 for k, v in layer.items() if k != last)])
    return layer


def _crossings(order: list[list[str]], down: Mapping[str, list[str]]) -> int:
    total = 0
    for upper, lower in itertools.pairwise(order):
        pos = {n: i for i, n in enumerate(lower)}
        pairs = [(i, pos[t]) for i, s in enumerate(upper) for t in down[s] if t in pos]
        for a in range(len(pairs)):
            for b in range(a + 1, len(pairs)):
                (i1, j1), (i2, j2) = pairs[a], pairs[b]
                if (i1 - i2) * (j1 - j2) < 0:
                    total += 1
    return total


def _barycentre(name: str, linked: Sequence[str], pos: Mapping[str, int], here: int) -> float:
    """Mean position of ``name``'s neighbours in the reference layer (its own if it has none)."""
    found = [pos[m] for m in linked if m in pos]
    return sum(found) / len(found) if found else float(here)


def _sweep(
    order: list[list[str]], neighbours: Mapping[str, list[str]], *, downward: bool
) -> list[list[str]]:
    """One barycentric pass: each layer sorted by its neighbours' mean position."""
    new = [list(layer) for layer in order]
    indices = range(1, len(new)) if downward else range(len(new) - 2, -1, -1)
    for k in indices:
        ref = new[k - 1] if downward else new[k + 1]
        pos = {n: i for i, n in enumerate(ref)}
        keys = {n: (_barycentre(n, neighbours[n], pos, i), i) for i, n in enumerate(new[k])}
        new[k].sort(key=keys.__getitem__)
    return new


def _order(
    layers: list[list[str]], down: Mapping[str, list[str]], up: Mapping[str, list[str]]
) -> list[list[str]]:
    """Sweep down (by predecessors) and up (by successors); keep the fewest crossings."""
    best = [list(layer) for layer in layers]
    best_cost = _crossings(best, down)
    order = best
    for i in range(SWEEPS):
        if best_cost == 0:
            break
        downward = i % 2 == 0
        order = _sweep(order, up if downward else down, downward=downward)
        cost = _crossings(order, down)
        if cost < best_cost:
            best, best_cost = order, cost
    return best


def layered_layout(
    names: Sequence[str],
    edges: Sequence[tuple[str, str, str]],
    labels: Mapping[str, Sequence[str]],
    *,
    first: str = "input",
    last: str = "output",
) -> Layout:
    """Lay out a small DAG left to right.

    Args:
        names: Node names in a stable order (``first`` and ``last`` included).
        edges: ``(source, target, label)``; edges naming unknown nodes are ignored.
        labels: The text lines of each node's box.
        first: The source box (layer 0).
        last: The sink box (last layer).

    Returns:
        The layout; ``boxes`` has every name, ``routes`` one entry per drawable edge.
    """
    known = set(names)
    drawn = [(s, t, lab) for s, t, lab in edges if s in known and t in known and s != t]
    back = _break_cycles(names, [(s, t) for s, t, _ in drawn])
    oriented = [(t, s) if i in back else (s, t) for i, (s, t, _) in enumerate(drawn)]
    layer = _layers(names, oriented, first, last)

    # Dummy chains for long edges; every edge becomes a chain of adjacent-layer links.
    down: dict[str, list[str]] = defaultdict(list)
    up: dict[str, list[str]] = defaultdict(list)
    chains: list[list[str]] = []
    slots: dict[int, list[str]] = defaultdict(list)
    for name in names:
        slots[layer[name]].append(name)
    for i, (s, t) in enumerate(oriented):
        chain = [s]
        for k in range(layer[s] + 1, layer[t]):
            dummy = f"\x00{i}:{k}"
            slots[k].append(dummy)
            chain.append(dummy)
        chain.append(t)
        for a, b in itertools.pairwise(chain):
            down[a].append(b)
            up[b].append(a)
        chains.append(chain)
    order = _order([slots[k] for k in sorted(slots)], down, up)

    # Column widths from the text; slot pitch from the tallest box.
    def size(name: str) -> tuple[float, float]:
        lines = labels.get(name, (name,))
        width = max((len(line) for line in lines), default=1) * CHAR_WIDTH_IN + 2 * BOX_PAD_IN
        return width, len(lines) * LINE_HEIGHT_IN + 2 * BOX_PAD_IN * 0.75

    sizes = {n: size(n) for n in names}
    col_width = [max([sizes[n][0] for n in col if n in sizes] or [0.6]) for col in order]
    box_h = max(h for _, h in sizes.values())
    pitch = box_h + SLOT_GAP_IN
    xs: list[float] = []
    x = 0.0
    for k, width in enumerate(col_width):
        x += width / 2 if k == 0 else (col_width[k - 1] + width) / 2 + COLUMN_GAP_IN
        xs.append(x)
    centre: dict[str, tuple[float, float]] = {}
    for k, col in enumerate(order):
        for j, name in enumerate(col):
            centre[name] = (xs[k], ((len(col) - 1) / 2 - j) * pitch)

    result = Layout(layers=[[n for n in col if n in known] for col in order])
    for name in names:
        cx, cy = centre[name]
        result.boxes[name] = Box(
            name, cx, cy, col_width[layer[name]], sizes[name][1], tuple(labels.get(name, (name,)))
        )

    # Ports: spread the edges that share a side of a box over its height, ordered by the
    # other end's height so that they do not cross at the box.
    outgoing: dict[str, list[int]] = defaultdict(list)
    incoming: dict[str, list[int]] = defaultdict(list)
    for i, chain in enumerate(chains):
        outgoing[chain[0]].append(i)
        incoming[chain[-1]].append(i)

    def port(name: str, edge: int, side: dict[str, list[int]], towards: int) -> float:
        box = result.boxes[name]
        peers = sorted(side[name], key=lambda e: -centre[chains[e][towards]][1])
        k = peers.index(edge)
        usable = box.height * 0.7
        return box.y + usable / 2 - usable * (k + 1) / (len(peers) + 1)

    for i, chain in enumerate(chains):
        s, t = chain[0], chain[-1]
        src, dst = result.boxes[s], result.boxes[t]
        points = [(src.right, port(s, i, outgoing, 1))]
        for dummy in chain[1:-1]:
            dx, dy = centre[dummy]
            half = col_width[layer[s] + chain.index(dummy)] / 2
            points += [(dx - half, dy), (dx + half, dy)]
        points.append((dst.left, port(t, i, incoming, -2)))
        source, target, label = drawn[i]
        if i in back:  # drawn against the layout direction
            points.reverse()
        result.routes.append(Route(source, target, label, tuple(points)))

    all_x = [b.left for b in result.boxes.values()] + [b.right for b in result.boxes.values()]
    all_y = [b.bottom for b in result.boxes.values()] + [b.top for b in result.boxes.values()]
    all_y += [y for route in result.routes for _, y in route.points]
    result.extent = (min(all_x), max(all_x), min(all_y), max(all_y))
    return result
