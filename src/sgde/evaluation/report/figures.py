"""Matplotlib figures of a bench report, rendered to embeddable base64 PNG.

Figures are built on :class:`matplotlib.figure.Figure` directly (no ``pyplot``), so nothing
touches matplotlib's global state or needs a display.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import offset_copy

from sgde.evaluation.report.layout import Layout, layered_layout
from sgde.plan.model import CodeNode, ConsensusNode, LlmNode, Plan
from sgde.plan.refs import parse_ref

__all__ = [
    "accuracy_figure",
    "dag_figure",
    "dag_layers",
    "figure_to_base64",
    "loss_figure",
    "plan_layout",
    "tokens_figure",
]

_KIND_COLOURS = {
    "input": "#e8e8e8",
    "output": "#e8e8e8",
    "llm": "#cfe2ff",
    "code": "#d1e7dd",
    "consensus": "#ffe5b4",
}
_METHOD_PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]


def figure_to_base64(fig: Figure, *, dpi: int = 110) -> str:
    """Render ``fig`` as PNG and return its base64 text (for ``data:image/png;base64,``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _colour(index: int) -> str:
    return _METHOD_PALETTE[index % len(_METHOD_PALETTE)]


def accuracy_figure(summary: Sequence[Mapping[str, Any]]) -> Figure:
    """Accuracy per method (bars per m) with Wilson 95 % intervals as error bars."""
    rows = [r for r in summary if r.get("accuracy") is not None]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    ms = sorted({int(r["m"]) for r in rows})
    fig = Figure(figsize=(max(5.0, 1.1 * len(methods) + 2), 3.6))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(ms))
    for j, m in enumerate(ms):
        xs, ys, lo, hi = [], [], [], []
        for i, method in enumerate(methods):
            row = next((r for r in rows if r["method"] == method and int(r["m"]) == m), None)
            if row is None:
                continue
            xs.append(i + (j - (len(ms) - 1) / 2) * width)
            ys.append(100 * row["accuracy"])
            lo.append(max(0.0, 100 * (row["accuracy"] - row["ci_low"])))
            hi.append(max(0.0, 100 * (row["ci_high"] - row["accuracy"])))
        ax.bar(xs, ys, width=width * 0.95, label=f"m = {m}", color=_colour(j), alpha=0.85)
        ax.errorbar(xs, ys, yerr=[lo, hi], fmt="none", ecolor="black", capsize=3, linewidth=1)
    ax.set_xticks(range(len(methods)))
    ax.set_xticklabels(methods, rotation=20, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 105)
    ax.set_title("Accuracy per method (Wilson 95 % intervals)")
    if ms:
        ax.legend(frameon=False)
    ax.grid(axis="y", alpha=0.3)
    return fig


def loss_figure(cells: Sequence[Mapping[str, Any]]) -> Figure:
    """Training loss per compile iteration, one line per SGDe cell."""
    fig = Figure(figsize=(6.0, 3.6))
    ax = fig.add_subplot()
    drawn = 0
    for cell in cells:
        history = (cell.get("prepare") or {}).get("loss_history") or []
        if not history:
            continue
        meta = cell["cell"]
        label = f"{meta['template']} m={meta['m']} s={meta['seed']}"
        ax.plot(range(len(history)), history, marker="o", label=label, color=_colour(drawn))
        drawn += 1
    if drawn == 0:
        ax.text(0.5, 0.5, "no compile history recorded", ha="center", va="center")
    elif drawn <= 10:
        ax.legend(frameon=False, fontsize="small")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("compile iteration")
    ax.set_ylabel("training loss")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title("SGDe training loss per iteration")
    ax.grid(alpha=0.3)
    return fig


def _spread(points: Sequence[tuple[float, float]], radius: float) -> list[tuple[float, float]]:
    """Display offsets (points) that pull apart markers closer than ``radius`` to each other.

    Markers within one cluster (transitively closer than ``radius``) are placed on a small
    circle around the cluster's centre, so a series drawn under another stays visible.
    """
    n = len(points)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            (x0, y0), (x1, y1) = points[i], points[j]
            if math.hypot(x0 - x1, y0 - y1) < radius:
                parent[root(i)] = root(j)
    clusters: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        clusters[root(i)].append(i)
    offsets = [(0.0, 0.0)] * n
    for members in clusters.values():
        if len(members) < 2:
            continue
        cx = sum(points[i][0] for i in members) / len(members)
        cy = sum(points[i][1] for i in members) / len(members)
        # Neighbours on a circle are 2 r sin(pi / k) apart: at least ``radius`` apart.
        ring = radius / (2 * math.sin(math.pi / len(members))) if len(members) > 2 else radius / 2
        for k, i in enumerate(members):
            angle = math.pi / 2 + 2 * math.pi * k / len(members)
            offsets[i] = (
                cx + ring * math.cos(angle) - points[i][0],
                cy + ring * math.sin(angle) - points[i][1],
            )
    return offsets


TOKENS_MARKER_SIZE_PT = 8.0
"""Diameter of a marker in the accuracy-vs-tokens plot, points."""


def tokens_figure(summary: Sequence[Mapping[str, Any]]) -> Figure:
    """Accuracy against student tokens per query, one marker per (method, m).

    Colour is the method and the marker shape is m, both named in a legend outside the axes
    (no labels next to the points, which overprint when points are close). Markers that would
    overlap are moved apart on a small circle around their common position.
    """
    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.add_subplot()
    rows = [
        r
        for r in summary
        if r.get("accuracy") is not None and r.get("tokens_per_query") is not None
    ]
    methods = list(dict.fromkeys(str(r["method"]) for r in rows))
    ms = sorted({int(r["m"]) for r in rows})
    markers = ["o", "s", "^", "D", "v", "P", "X"]
    xs = [float(r["tokens_per_query"]) for r in rows]
    ys = [100 * float(r["accuracy"]) for r in rows]
    if xs:
        span = max(xs) - min(xs) or max(1.0, abs(xs[0]))
        ax.set_xlim(min(xs) - 0.08 * span, max(xs) + 0.08 * span)
    ax.set_ylim(-5, 105)
    # Offsets are computed in display space, so the limits and the figure size must be final.
    fig.subplots_adjust(left=0.11, right=0.70, bottom=0.14, top=0.90)
    per_point = fig.dpi / 72.0
    display = [tuple(ax.transData.transform((x, y))) for x, y in zip(xs, ys, strict=True)]
    offsets = _spread(
        [(px / per_point, py / per_point) for px, py in display], 1.25 * TOKENS_MARKER_SIZE_PT
    )
    for row, x, y, (dx, dy) in zip(rows, xs, ys, offsets, strict=True):
        ax.scatter(
            [x],
            [y],
            color=_colour(methods.index(str(row["method"]))),
            marker=markers[ms.index(int(row["m"])) % len(markers)],
            s=TOKENS_MARKER_SIZE_PT**2,
            edgecolors="black",
            linewidths=0.5,
            zorder=3,
            transform=offset_copy(ax.transData, fig=fig, x=dx, y=dy, units="points"),
        )
    handles = [
        Line2D([], [], color=_colour(i), marker="o", linestyle="", label=method)
        for i, method in enumerate(methods)
    ]
    handles += [
        Line2D(
            [],
            [],
            color="#555555",
            marker=markers[j % len(markers)],
            markerfacecolor="white",
            linestyle="",
            label=f"m = {m}",
        )
        for j, m in enumerate(ms)
    ]
    if handles:
        ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            frameon=False,
            fontsize="small",
        )
    else:
        ax.text(0.5, 0.5, "no results", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("student tokens per query")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Accuracy vs student cost")
    ax.grid(alpha=0.3)
    return fig


def _edges(plan: Plan) -> list[tuple[str, str, str]]:
    """(source, target, label) edges; sources/targets are node ids, ``"input"``, ``"output"``."""
    edges: list[tuple[str, str, str]] = []
    for node in plan.nodes:
        if isinstance(node, ConsensusNode):
            edges.append((node.of, node.id, f"×{node.n}"))
            continue
        if isinstance(node, LlmNode | CodeNode):
            sources: dict[str, list[str]] = defaultdict(list)
            for ref_text in node.inputs.values():
                ref = parse_ref(ref_text)
                sources[ref.source].append(ref.field)
            for source, fields in sources.items():
                edges.append((source, node.id, ", ".join(sorted(set(fields)))))
    for name, ref_text in plan.outputs.items():
        edges.append((parse_ref(ref_text).source, "output", name))
    return edges


def _kind(plan: Plan, name: str) -> str:
    if name in {"input", "output"}:
        return name
    return plan.node(name).kind


def _box_lines(plan: Plan, name: str) -> tuple[str, ...]:
    if name == "input":
        return ("inputs", *_wrap(", ".join(plan.inputs))) if plan.inputs else ("inputs",)
    if name == "output":
        return ("outputs", *_wrap(", ".join(plan.outputs))) if plan.outputs else ("outputs",)
    node = plan.node(name)
    detail: str = node.kind
    if isinstance(node, ConsensusNode):
        detail = f"consensus n={node.n}"
    elif isinstance(node, LlmNode):
        detail = f"llm ({node.model})"
    return (_short(name, 28), _short(detail, 28))


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _wrap(text: str, width: int = 28, lines: int = 2) -> list[str]:
    wrapped = textwrap.wrap(text, width) or [""]
    if len(wrapped) > lines:
        wrapped = [*wrapped[: lines - 1], _short(wrapped[lines - 1] + " …", width)]
    return wrapped


def _edge_label(label: str) -> str:
    fields = [f for f in label.split(", ") if f]
    shown = fields if len(fields) <= 2 else [*fields[:1], f"+{len(fields) - 1} more"]
    return "\n".join(_short(f, 18) for f in shown)


def plan_layout(plan: Plan) -> Layout:
    """The layered layout of ``plan``'s DAG (inputs box, nodes, outputs box); units: inches."""
    names = ["input", *plan.node_ids(), "output"]
    return layered_layout(names, _edges(plan), {n: _box_lines(plan, n) for n in names})


def dag_layers(plan: Plan) -> list[list[str]]:
    """Nodes grouped by layer (longest path from the inputs), in drawing order.

    Layer 0 is ``"input"``; the last layer is ``"output"``.
    """
    return [layer for layer in plan_layout(plan).layers if layer]


def dag_figure(plan: Plan) -> Figure:
    """Draw the plan's DAG with a layered layout (left to right): boxes, routed arrows, labels.

    One data unit is one inch, so box sizes computed from the text fit the text. Consensus
    edges (the wrapped node to its vote) are dashed and labelled ``×n``; other edges carry the
    fields they pass.
    """
    layout = plan_layout(plan)
    xmin, xmax, ymin, ymax = layout.extent
    margin, title_h = 0.25, 0.35
    width, height = xmax - xmin + 2 * margin, ymax - ymin + 2 * margin + title_h
    fig = Figure(figsize=(max(width, 3.0), max(height, 1.5)))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    fig_w, fig_h = fig.get_size_inches()
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2 + title_h / 2
    ax.set_xlim(cx - fig_w / 2, cx + fig_w / 2)
    ax.set_ylim(cy - fig_h / 2, cy + fig_h / 2)
    ax.set_axis_off()
    node_ids = set(plan.node_ids())
    for route in layout.routes:
        dashed = route.target in node_ids and isinstance(plan.node(route.target), ConsensusNode)
        xs = [p[0] for p in route.points]
        ys = [p[1] for p in route.points]
        style = "--" if dashed else "-"
        ax.plot(xs[:-1], ys[:-1], color="#333333", linewidth=1.0, linestyle=style, zorder=1)
        ax.annotate(
            "",
            xy=route.points[-1],
            xytext=route.points[-2],
            arrowprops={
                "arrowstyle": "-|>",
                "color": "#333333",
                "linestyle": style,
                "shrinkA": 0,
                "shrinkB": 0,
                "mutation_scale": 9,
            },
            zorder=1,
        )
        # The label sits on the edge's first slanted segment, in the gap between columns.
        (x0, y0), (x1, y1) = route.points[0], route.points[1]
        ax.text(
            (x0 + x1) / 2,
            (y0 + y1) / 2,
            _edge_label(route.label),
            ha="center",
            va="center",
            fontsize=6.5,
            color="#444444",
            zorder=5,
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"},
            gid=f"edge-label:{route.source}->{route.target}",
        )
    for name, box in layout.boxes.items():
        ax.add_patch(
            FancyBboxPatch(
                (box.left, box.bottom),
                box.width,
                box.height,
                boxstyle="round,pad=0,rounding_size=0.06",
                facecolor=_KIND_COLOURS.get(_kind(plan, name), "#ffffff"),
                edgecolor="#444444",
                zorder=2,
                gid=f"box:{name}",
            )
        )
        ax.text(box.x, box.y, "\n".join(box.lines), ha="center", va="center", fontsize=8, zorder=3)
    ax.text(
        cx,
        cy + fig_h / 2 - title_h / 2,
        f"plan '{_short(plan.name, 60)}'",
        ha="center",
        va="center",
        fontsize=10,
    )
    return fig
