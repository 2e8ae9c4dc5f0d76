"""Bench reports: aggregation, matplotlib figures, Markdown and self-contained HTML."""

from sgde.evaluation.report.aggregate import (
    SGDE_METHOD,
    compare_paired,
    summarise_cells,
    teacher_tokens_used,
)
from sgde.evaluation.report.render import ReportPaths, render_report

__all__ = [
    "SGDE_METHOD",
    "ReportPaths",
    "compare_paired",
    "render_report",
    "summarise_cells",
    "teacher_tokens_used",
]
