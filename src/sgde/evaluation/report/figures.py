"""Matplotlib figures of a bench report, rendered to embeddable base64 PNG.

Figures are built on :class:`matplotlib.figure.Figure` directly (no ``pyplot``), so nothing
touches matplotlib's global state or needs a display.
"""

from __future__ import annotations

import base64
import io
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import yaml
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch
from matplotlib.ticker import MaxNLocator

from sgde.plan.model import CodeNode, ConsensusNode, LlmNode, Plan
from sgde.plan.refs import parse_ref

__all__ = [
    "accuracy_figure",
    "dag_figure",
    "dag_layers",
    "figure_to_base64",
    "loss_figure",
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


def tokens_figure(summary: Sequence[Mapping[str, Any]]) -> Figure:
    """Accuracy against student tokens per query, one point per (method, m)."""
    fig = Figure(figsize=(6.0, 3.8))
    ax = fig.add_subplot()
    methods = list(dict.fromkeys(r["method"] for r in summary))
    markers = ["o", "s", "^", "D", "v"]
    ms = sorted({int(r["m"]) for r in summary})
    for row in summary:
        if row.get("accuracy") is None or row.get("tokens_per_query") is None:
            continue
        i = methods.index(row["method"])
        ax.scatter(
            row["tokens_per_query"],
            100 * row["accuracy"],
            color=_colour(i),
            marker=markers[ms.index(int(row["m"])) % len(markers)],
            s=50,
        )
        ax.annotate(
            f"{row['method']} (m={row['m']})",
            (row["tokens_per_query"], 100 * row["accuracy"]),
            textcoords="offset points",
            xytext=(6, 4 - 11 * ms.index(int(row["m"]))),
            fontsize="small",
        )
    ax.set_xlabel("student tokens per query")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(-5, 105)
    ax.set_title("Accuracy vs student cost")
    ax.grid(alpha=0.3)
    return fig


def plan_from_yaml(text: str) -> Plan:
    """Parse a plan's YAML text into a :class:`Plan` (pydantic checks only)."""
    return Plan.model_validate(yaml.safe_load(text))


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


def dag_layers(plan: Plan) -> list[list[str]]:
    """Nodes grouped by topological layer (longest path from the inputs).

    Layer 0 is ``"input"``; the last layer is ``"output"``. Nodes in a cycle or with
    unknown sources are placed after their known predecessors.
    """
    edges = _edges(plan)
    preds: dict[str, set[str]] = defaultdict(set)
    for source, target, _ in edges:
        preds[target].add(source)
    names = ["input", *plan.node_ids()]
    layer: dict[str, int] = {"input": 0}
    for _ in range(len(names) + 1):
        changed = False
        for name in names[1:]:
            known = [layer[p] for p in preds[name] if p in layer and p != name]
            value = 1 + max(known, default=0)
            if layer.get(name) != value:
                layer[name] = value
                changed = True
        if not changed:
            break
    last = max(layer.values(), default=0) + 1
    layer["output"] = last
    grouped: list[list[str]] = [[] for _ in range(last + 1)]
    for name in [*names, "output"]:
        grouped[min(layer[name], last)].append(name)
    return [g for g in grouped if g]


def _kind(plan: Plan, name: str) -> str:
    if name in {"input", "output"}:
        return name
    return plan.node(name).kind


def _box_label(plan: Plan, name: str) -> str:
    if name == "input":
        return "inputs\n" + ", ".join(plan.inputs) if plan.inputs else "inputs"
    if name == "output":
        return "outputs\n" + ", ".join(plan.outputs) if plan.outputs else "outputs"
    node = plan.node(name)
    detail: str = node.kind
    if isinstance(node, ConsensusNode):
        detail = f"consensus n={node.n}"
    elif isinstance(node, LlmNode):
        detail = f"llm ({node.model})"
    return f"{name}\n{detail}"


def dag_figure(plan: Plan) -> Figure:
    """Draw the plan's DAG: boxes by topological layer (left to right), arrows for edges."""
    layers = dag_layers(plan)
    height = max(len(layer) for layer in layers)
    step = 3.2
    fig = Figure(figsize=(max(4.0, 2.6 * len(layers)), max(2.2, 1.4 * height)))
    ax = fig.add_subplot()
    pos: dict[str, tuple[float, float]] = {}
    for column, layer in enumerate(layers):
        for k, name in enumerate(layer):
            pos[name] = (column * step, (len(layer) - 1) / 2 - k)
    box_w, box_h = 1.6, 0.7
    for name, (x, y) in pos.items():
        ax.add_patch(
            FancyBboxPatch(
                (x - box_w / 2, y - box_h / 2),
                box_w,
                box_h,
                boxstyle="round,pad=0.05",
                facecolor=_KIND_COLOURS.get(_kind(plan, name), "#ffffff"),
                edgecolor="#444444",
            )
        )
        ax.text(x, y, _box_label(plan, name), ha="center", va="center", fontsize=8)
    for source, target, label in _edges(plan):
        if source not in pos or target not in pos:
            continue
        (x0, y0), (x1, y1) = pos[source], pos[target]
        dashed = target in plan.node_ids() and isinstance(plan.node(target), ConsensusNode)
        ax.annotate(
            "",
            xy=(x1 - box_w / 2, y1),
            xytext=(x0 + box_w / 2, y0),
            arrowprops={
                "arrowstyle": "->",
                "color": "#333333",
                "linestyle": "--" if dashed else "-",
                "shrinkA": 2,
                "shrinkB": 2,
            },
        )
        fields = label.split(", ")
        shown = fields if len(fields) <= 5 else [*fields[:4], f"+{len(fields) - 4} more"]
        wrapped = "\n".join(shown)
        ax.text(
            (x0 + x1) / 2,
            (y0 + y1) / 2 + 0.08,
            wrapped,
            ha="center",
            va="bottom",
            fontsize=6.5,
            color="#555",
        )
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 1.0, max(xs) + 1.0)
    ax.set_ylim(min(ys) - 0.8, max(ys) + 0.8)
    ax.set_axis_off()
    ax.set_title(f"plan '{plan.name}'", fontsize=10)
    return fig
