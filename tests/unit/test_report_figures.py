"""Report figures: the plan picture's layered layout and the accuracy-vs-tokens plot.

Geometry is checked on the drawn artists (matplotlib's own bounding boxes), not on the
layout's intentions.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

pytest.importorskip("matplotlib")  # the sgde[report] extra (part of dev)

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PathCollection
from matplotlib.patches import FancyBboxPatch
from matplotlib.text import Text

from sgde.evaluation.report.figures import (
    TOKENS_MARKER_SIZE_PT,
    dag_figure,
    dag_layers,
    plan_layout,
    tokens_figure,
)
from sgde.evaluation.report.layout import layered_layout
from sgde.plan.model import CodeNode, ConsensusNode, LlmNode, Plan

SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}}


def fan_out_join_plan() -> Plan:
    """Six nodes: input fans out to two llm nodes; a vote, a code node; a join of three; a
    checker that also reads the first node (an edge that skips three layers)."""
    return Plan(
        name="fan-out-join",
        inputs={"question": "string", "context": "string"},
        outputs={"answer": "combine.answer", "check": "verify.ok"},
        nodes=[
            LlmNode(
                id="extract_quantities",
                inputs={"question": "input.question"},
                prompt="{{ question }}",
                output_schema=SCHEMA,
            ),
            ConsensusNode(id="extract_vote", of="extract_quantities", n=5),
            CodeNode(
                id="compute_total",
                inputs={"x": "extract_vote.x"},
                code="def run(x):\n    return {'t': x}\n",
            ),
            LlmNode(
                id="rate",
                inputs={"question": "input.question", "context": "input.context"},
                prompt="{{ question }} {{ context }}",
                output_schema=SCHEMA,
            ),
            CodeNode(
                id="combine",
                inputs={"t": "compute_total.t", "r": "rate.x", "q": "extract_vote.x"},
                code="def run(t, r, q):\n    return {'answer': t}\n",
            ),
            CodeNode(
                id="verify",
                inputs={"a": "combine.answer", "x": "extract_quantities.x"},
                code="def run(a, x):\n    return {'ok': True}\n",
            ),
        ],
    )


def _draw(fig: Any) -> Any:
    """Draw ``fig`` on an Agg canvas (figures are built without pyplot) and return it."""
    FigureCanvasAgg(fig).draw()
    return fig


def _boxes(fig: Any) -> dict[str, Any]:
    renderer = fig.canvas.get_renderer()
    return {
        p.get_gid().split(":", 1)[1]: p.get_window_extent(renderer)
        for p in fig.axes[0].patches
        if isinstance(p, FancyBboxPatch) and (p.get_gid() or "").startswith("box:")
    }


def _segment_hits_box(p: tuple[float, float], q: tuple[float, float], box: Any) -> bool:
    """Liang-Barsky: does segment p-q enter the interior of ``box`` (shrunk by 1 px)?"""
    x0, y0, x1, y1 = box.x0 + 1, box.y0 + 1, box.x1 - 1, box.y1 - 1
    dx, dy = q[0] - p[0], q[1] - p[1]
    lo, hi = 0.0, 1.0
    for edge_p, edge_q in ((-dx, p[0] - x0), (dx, x1 - p[0]), (-dy, p[1] - y0), (dy, y1 - p[1])):
        if edge_p == 0:
            if edge_q < 0:
                return False
            continue
        t = edge_q / edge_p
        if edge_p < 0:
            lo = max(lo, t)
        else:
            hi = min(hi, t)
        if lo > hi:
            return False
    return True


def test_fan_out_and_join_are_layered() -> None:
    layers = dag_layers(fan_out_join_plan())
    assert layers[0] == ["input"] and layers[-1] == ["output"]
    assert sorted(layers[1]) == ["extract_quantities", "rate"]  # the fan-out shares a layer
    index = {name: k for k, layer in enumerate(layers) for name in layer}
    for node in fan_out_join_plan().nodes:
        for ref in getattr(node, "inputs", {}).values():
            source = ref.split(".")[0]
            assert index[source] < index[node.id]


def test_plan_picture_boxes_do_not_overlap_and_edges_avoid_boxes() -> None:
    plan = fan_out_join_plan()
    fig = _draw(dag_figure(plan))
    boxes = _boxes(fig)
    assert set(boxes) == {"input", "output", *plan.node_ids()}
    for (a, box_a), (b, box_b) in itertools.combinations(boxes.items(), 2):
        assert not box_a.overlaps(box_b), f"boxes {a} and {b} overlap"

    to_display = fig.axes[0].transData.transform
    routes = plan_layout(plan).routes
    assert len(routes) == 11
    for route in routes:
        points = [tuple(to_display(p)) for p in route.points]
        for p, q in itertools.pairwise(points):
            for name, box in boxes.items():
                assert not _segment_hits_box(p, q, box), (
                    f"edge {route.source}->{route.target} passes through box {name}"
                )


def test_plan_picture_text_fits_and_labels_do_not_collide() -> None:
    fig = _draw(dag_figure(fan_out_join_plan()))
    renderer = fig.canvas.get_renderer()
    boxes = _boxes(fig)
    texts = [t for t in fig.axes[0].texts if isinstance(t, Text) and t.get_text()]
    labels = [t for t in texts if (t.get_gid() or "").startswith("edge-label:")]
    assert labels
    for text in texts:
        if text in labels or text.get_text().startswith("plan "):
            continue
        extent = text.get_window_extent(renderer)
        holder = [name for name, box in boxes.items() if box.contains(*extent.get_points()[0])]
        assert len(holder) == 1, text.get_text()
        box = boxes[holder[0]]
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1, f"{text.get_text()!r} overflows"
        assert box.y0 <= extent.y0 and extent.y1 <= box.y1, f"{text.get_text()!r} overflows"
    label_boxes = [t.get_window_extent(renderer) for t in labels]
    for a, b in itertools.combinations(label_boxes, 2):
        assert not a.overlaps(b)
    for extent in label_boxes:
        for name, box in boxes.items():
            assert not extent.overlaps(box), f"an edge label covers box {name}"


def test_layout_reverses_a_cycle_instead_of_failing() -> None:
    layout = layered_layout(
        ["input", "a", "b", "output"],
        [("input", "a", ""), ("a", "b", ""), ("b", "a", "back"), ("b", "output", "")],
        {},
    )
    assert [r.label for r in layout.routes].count("back") == 1
    back = next(r for r in layout.routes if r.label == "back")
    assert back.points[0][0] > back.points[-1][0]  # drawn from b (right) back to a (left)


def _summary() -> list[dict[str, Any]]:
    rows = []
    # Two methods at identical coordinates (the second would hide the first) and two at
    # nearly identical ones, for two values of m.
    for m in (3, 5):
        rows += [
            {"method": "sgde", "m": m, "accuracy": 0.95, "tokens_per_query": 180.0 - m},
            {"method": "cot", "m": m, "accuracy": 0.025, "tokens_per_query": 481.0},
            {"method": "ape", "m": m, "accuracy": 0.025, "tokens_per_query": 481.0},
            {"method": "pal", "m": m, "accuracy": 0.0, "tokens_per_query": 366.0},
            {"method": "direct", "m": m, "accuracy": 0.0, "tokens_per_query": 99.0},
        ]
    return rows


def test_tokens_plot_markers_do_not_hide_each_other() -> None:
    fig = _draw(tokens_figure(_summary()))
    ax = fig.axes[0]
    centres = []
    for coll in ax.collections:
        assert isinstance(coll, PathCollection)
        centres += [tuple(xy) for xy in coll.get_offset_transform().transform(coll.get_offsets())]
    assert len(centres) == 10
    diameter_px = TOKENS_MARKER_SIZE_PT * fig.dpi / 72
    for (x0, y0), (x1, y1) in itertools.combinations(centres, 2):
        assert ((x0 - x1) ** 2 + (y0 - y1) ** 2) ** 0.5 >= diameter_px, "markers overlap"
    # Every marker stays inside the axes.
    box = ax.get_window_extent()
    assert all(box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1 for x, y in centres)


def test_tokens_plot_names_series_in_a_legend_not_on_points() -> None:
    fig = _draw(tokens_figure(_summary()))
    ax = fig.axes[0]
    assert not ax.texts  # no per-point labels to overprint
    legend = ax.get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["sgde", "cot", "ape", "pal", "direct", "m = 3", "m = 5"]
    renderer = fig.canvas.get_renderer()
    extents = [t.get_window_extent(renderer) for t in legend.get_texts()]
    for a, b in itertools.combinations(extents, 2):
        assert not a.overlaps(b)
    assert not legend.get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))


def test_segment_check_sees_a_crossing() -> None:
    from matplotlib.transforms import Bbox

    box = Bbox.from_extents(10, 10, 20, 20)
    assert _segment_hits_box((0, 15), (30, 15), box)  # straight through
    assert _segment_hits_box((0, 0), (30, 30), box)  # diagonally through
    assert not _segment_hits_box((0, 25), (30, 25), box)  # above
    assert not _segment_hits_box((0, 15), (10, 15), box)  # ends on the left side (a port)
