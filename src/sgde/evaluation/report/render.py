"""Render bench results as ``report.md`` and a self-contained ``report.html``.

The HTML embeds every figure as a base64 PNG and the compiled plans' Mermaid text, so the
single file can be mailed or archived. The Markdown links the same figures as PNG files
written next to it (``figures/``) and carries Mermaid blocks that GitHub renders.
Templates are package data (``templates/*.j2``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import yaml

from sgde._optional import require
from sgde.evaluation.report.aggregate import SGDE_METHOD
from sgde.evaluation.report.formatting import (
    format_cost,
    format_number,
    format_p_value,
    format_pct,
)
from sgde.plan.model import Plan
from sgde.planfile.files import write_text_atomic

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ReportPaths", "render_report"]


@dataclass(frozen=True)
class ReportPaths:
    """Where a report was written."""

    markdown: Path
    html: Path
    figures: list[Path]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("sgde.evaluation.report", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["pct"] = format_pct
    env.filters["num"] = format_number
    env.filters["pvalue"] = format_p_value
    env.filters["cost"] = format_cost
    env.filters["md"] = lambda v: str(v).replace("|", "\\|").replace("\n", " ")
    return env


def plan_from_yaml(text: str) -> Plan:
    """Parse a plan's YAML text into a :class:`Plan` (pydantic checks only)."""
    return Plan.model_validate(yaml.safe_load(text))


def _plans(cells: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The compiled plan of each (template, seed) at its largest m."""
    chosen: dict[tuple[str, int], Mapping[str, Any]] = {}
    for cell in cells:
        meta = cell["cell"]
        prep = cell.get("prepare") or {}
        if meta["method"] != SGDE_METHOD or cell.get("status") != "ok" or not prep.get("plan"):
            continue
        key = (str(meta["template"]), int(meta["seed"]))
        if key not in chosen or int(meta["m"]) > int(chosen[key]["cell"]["m"]):
            chosen[key] = cell
    plans = []
    for (template, seed), cell in sorted(chosen.items()):
        prep = cell["prepare"]
        plans.append(
            {
                "key": f"{template}-m{cell['cell']['m']}-s{seed}",
                "title": f"{template}, m = {cell['cell']['m']}, seed {seed}",
                "plan": plan_from_yaml(prep["plan"]),
                "yaml": prep["plan"],
                "mermaid": prep.get("mermaid") or "",
                "accuracy": cell["eval"]["accuracy"],
            }
        )
    return plans


def _cell_rows(cells: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for cell in cells:
        meta = cell["cell"]
        ev = cell.get("eval") or {}
        prep = cell.get("prepare") or {}
        rows.append(
            {
                "template": meta["template"],
                "m": meta["m"],
                "seed": meta["seed"],
                "method": meta["method"],
                "status": cell.get("status"),
                "accuracy": ev.get("accuracy"),
                "n": ev.get("n"),
                "teacher_tokens": (prep.get("teacher_usage") or {}).get("total_tokens"),
                "iterations": prep.get("iterations"),
                "seconds": float(prep.get("seconds") or 0) + float(cell.get("eval_seconds") or 0),
                "error": cell.get("error") or "",
                "notes": "; ".join(prep.get("notes") or []),
            }
        )
    return rows


def render_report(results: Mapping[str, Any], out_dir: Path) -> ReportPaths:
    """Write ``report.md``, ``report.html`` and ``figures/*.png`` for bench ``results``.

    Args:
        results: The dict written to ``results.json`` (see :mod:`sgde.evaluation.bench`).
        out_dir: Output directory.

    Returns:
        The paths written.

    Raises:
        UsageError: matplotlib (the ``sgde[report]`` extra) is not installed.
    """
    require("matplotlib", what="drawing the report's figures")
    # Imported here, not at module level: matplotlib is the optional ``report`` extra and
    # costs a quarter of a second to import.
    from sgde.evaluation.report.figures import (
        accuracy_figure,
        dag_figure,
        figure_to_base64,
        loss_figure,
        tokens_figure,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(exist_ok=True)
    cells: Sequence[Mapping[str, Any]] = results.get("cells", [])
    summary: Sequence[Mapping[str, Any]] = results.get("summary", [])
    plans = _plans(cells)
    figures: list[tuple[str, str, Figure]] = [
        ("accuracy", "Accuracy per method with Wilson 95 % intervals", accuracy_figure(summary)),
        ("loss", "Training loss per compile iteration", loss_figure(cells)),
        ("tokens", "Accuracy against student tokens per query", tokens_figure(summary)),
    ]
    figures += [
        (f"dag-{p['key']}", f"Compiled plan: {p['title']}", dag_figure(p["plan"])) for p in plans
    ]
    embedded: dict[str, dict[str, str]] = {}
    written: list[Path] = []
    for key, caption, fig in figures:
        data = figure_to_base64(fig)
        path = fig_dir / f"{key}.png"
        fig.savefig(path, format="png", dpi=110, bbox_inches="tight")
        written.append(path)
        embedded[key] = {"caption": caption, "b64": data, "file": f"figures/{key}.png"}
    context = {
        "results": results,
        "summary": summary,
        "comparisons": results.get("comparisons", []),
        "cells": _cell_rows(cells),
        "plans": plans,
        "figures": embedded,
        "sgde": SGDE_METHOD,
    }
    env = _environment()
    md_path = out_dir / "report.md"
    html_path = out_dir / "report.html"
    markdown = env.get_template("report.md.j2").render(**context)
    write_text_atomic(md_path, markdown, what="report", make_parents=True)
    html = env.get_template("report.html.j2").render(**context)
    write_text_atomic(html_path, html, what="report", make_parents=True)
    return ReportPaths(markdown=md_path, html=html_path, figures=written)
