"""Bench reports: aggregation, McNemar pairing, figures, Markdown and self-contained HTML."""

from __future__ import annotations

import base64
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from _bench_fakes import SGDE_PLAN, fake_config

from sgde.evaluation.bench import build_results
from sgde.evaluation.report import compare_paired, render_report, summarise_cells
from sgde.evaluation.report.figures import dag_figure, dag_layers
from sgde.plan import to_mermaid
from sgde.plan.model import CodeNode, ConsensusNode, LlmNode, Plan
from sgde.planfile import dump_plan

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _cell(method: str, m: int, correct: list[bool], **prepare: Any) -> dict[str, Any]:
    items = [
        {"id": f"i{k}", "correct": c, "tokens": 10 * (k + 1), "latency_s": 0.1 * (k + 1)}
        for k, c in enumerate(correct)
    ]
    n = len(items)
    return {
        "cell": {
            "id": f"t__m{m}__s0__{method}",
            "template": "t",
            "m": m,
            "seed": 0,
            "method": method,
        },
        "status": "ok",
        "prepare": {"seconds": 1.0, **prepare},
        "eval": {"items": items, "n": n, "n_correct": sum(correct), "accuracy": sum(correct) / n},
        "eval_seconds": 1.0,
    }


def _cells() -> list[dict[str, Any]]:
    plan = extended_plan()
    return [
        _cell(
            "sgde",
            3,
            [True] * 9 + [False],
            teacher_usage={"total_tokens": 1000, "usd": 0.0},
            iterations=2,
            converged=True,
            loss_history=[0.67, 0.33, 0.0],
            plan=dump_plan(plan),
            mermaid=to_mermaid(plan),
        ),
        _cell("direct", 3, [True, False] * 5),
        {
            "cell": {"id": "t__m3__s0__ape", "template": "t", "m": 3, "seed": 0, "method": "ape"},
            "status": "error",
            "error": "BudgetExceeded: out of tokens",
        },
    ]


def extended_plan() -> Plan:
    """extract -> vote (consensus) -> compute (code)."""
    return Plan(
        name="ducks",
        inputs={"question": "string"},
        outputs={"answer": "compute.answer"},
        nodes=[
            LlmNode(
                id="extract",
                inputs={"question": "input.question"},
                prompt="{{ question }}",
                output_schema={"type": "object", "properties": {"eggs": {"type": "integer"}}},
            ),
            ConsensusNode(id="vote", of="extract", n=5),
            CodeNode(
                id="compute",
                inputs={"eggs": "vote.eggs"},
                code="def run(eggs):\n    return {'answer': eggs * 2}\n",
            ),
        ],
    )


def test_summary_pools_items_and_counts_errors() -> None:
    rows = {(r["method"], r["m"]): r for r in summarise_cells(_cells())}
    sgde = rows[("sgde", 3)]
    assert sgde["n_items"] == 10 and sgde["accuracy"] == 0.9
    assert sgde["ci_low"] < 0.9 < sgde["ci_high"]
    assert sgde["tokens_per_query"] == 55.0
    assert sgde["latency_median_s"] == pytest.approx(0.55)
    assert sgde["teacher_tokens_mean"] == 1000 and sgde["iterations_mean"] == 2
    assert rows[("ape", 3)]["errors"] == 1 and rows[("ape", 3)]["accuracy"] is None
    assert next(iter(rows)) == ("sgde", 3)  # SGDe first within an m


def test_paired_comparison_counts_discordant_items() -> None:
    [row] = compare_paired(_cells())
    assert row["baseline"] == "direct" and row["n_pairs"] == 10
    assert row["reference_only"] == 4 and row["baseline_only"] == 0
    assert row["both"] == 5 and row["neither"] == 1
    assert row["delta"] == pytest.approx(0.4)
    assert 0.0 < row["p_value"] < 1.0


def test_dag_layers_follow_the_edges() -> None:
    assert dag_layers(extended_plan()) == [
        ["input"],
        ["extract"],
        ["vote"],
        ["compute"],
        ["output"],
    ]
    fig = dag_figure(extended_plan())
    assert len(fig.axes[0].patches) == 5


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        elif tag not in {"meta", "br", "hr", "link"}:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()


def test_report_html_is_self_contained(tmp_path: Path) -> None:
    results = build_results(fake_config(m=[3], methods=["direct", "sgde", "ape"]), _cells())
    paths = render_report(results, tmp_path)
    html = paths.html.read_text(encoding="utf-8")
    parser = _Collector()
    parser.feed(html)
    assert parser.errors == [] and parser.stack == []
    assert len(parser.images) == 4  # accuracy, loss, tokens, one DAG
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    assert "flowchart" in html or "graph" in html  # the Mermaid text
    assert "BudgetExceeded" in html
    assert "http://" not in html and "https://" not in html  # nothing fetched


def test_report_markdown_has_tables_and_mermaid(tmp_path: Path) -> None:
    results = build_results(fake_config(m=[3], methods=["direct", "sgde", "ape"]), _cells())
    paths = render_report(results, tmp_path)
    md = paths.markdown.read_text(encoding="utf-8")
    assert "| sgde | 3 | 90.0 %" in md
    assert "```mermaid" in md
    assert "| 3 | direct | 10 |" in md
    for fig in paths.figures:
        assert fig.read_bytes().startswith(PNG_MAGIC)
        assert f"figures/{fig.name}" in md


def test_report_without_compiled_plans(tmp_path: Path) -> None:
    cells = [_cell("direct", 3, [True, False])]
    results = build_results(fake_config(m=[3], methods=["direct"]), cells)
    paths = render_report(results, tmp_path)
    html = paths.html.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 3
    assert "No paired comparisons" in html
    assert SGDE_PLAN.name not in html
