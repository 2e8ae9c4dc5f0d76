#!/usr/bin/env python3
"""Render the README's results table from a bench ``results.json`` — never type it by hand.

Usage::

    python scripts/results_table.py bench-gsm_hard_targeted/results.json
    python scripts/results_table.py bench-gsm_hard_targeted/results.json --readme README.md

The first prints the Markdown; the second replaces the block between
``<!-- results-table -->`` and ``<!-- /results-table -->`` in the README (the markers must
exist). The table names the models, m, the number of test items, the seeds and the date.
Only the standard library is used, so the script runs without sgde installed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

START = "<!-- results-table -->"
END = "<!-- /results-table -->"
SGDE = "sgde"


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.1f}"


def _num(value: Any, digits: int = 0) -> str:
    return "–" if value is None else f"{float(value):,.{digits}f}"


def _join(values: Sequence[Any]) -> str:
    return ", ".join(str(v) for v in values)


def render_table(results: Mapping[str, Any]) -> str:
    """The Markdown block: a caption line, the table and the paired comparisons.

    Args:
        results: The parsed ``results.json``.

    Returns:
        Markdown text ending with a newline.

    Raises:
        ValueError: when the document is not a bench results file.
    """
    if "summary" not in results or "config" not in results:
        raise ValueError("not a bench results.json (no 'summary'/'config')")
    config = results["config"]
    models = results.get("models", {})
    date = str(results.get("created", ""))[:10]
    templates = config.get("templates", [])
    lines = [
        f"Benchmark `{results.get('name', '')}` run on {date} with sgde "
        f"{results.get('sgde_version', '?')}: student `{models.get('student')}`, teacher "
        f"`{models.get('teacher')}`; {len(templates)} GSM-Hard template(s) "
        f"({_join(templates)}); m ∈ {{{_join(config.get('m', []))}}}; "
        f"{config.get('n_test')} held-out test items per template and seed; "
        f"seeds {{{_join(config.get('seeds', []))}}}. "
        "Accuracy in % with Wilson 95 % intervals; tokens per test query are the student's; "
        "teacher tokens are spent once, to prepare (compile / optimise).",
        "",
        "| method | m | accuracy % | 95 % CI | items | student tokens / query "
        "| latency median (s) | teacher tokens to prepare | iterations |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["summary"]:
        method = f"**{row['method']}**" if row["method"] == SGDE else row["method"]
        ci = (
            f"{_pct(row['ci_low'])}–{_pct(row['ci_high'])}"
            if row.get("accuracy") is not None
            else "–"
        )
        lines.append(
            f"| {method} | {row['m']} | {_pct(row.get('accuracy'))} | {ci} | "
            f"{row.get('n_items', 0)} | {_num(row.get('tokens_per_query'))} | "
            f"{_num(row.get('latency_median_s'), 2)} | {_num(row.get('teacher_tokens_mean'))} | "
            f"{_num(row.get('iterations_mean'), 1)} |"
        )
    comparisons = results.get("comparisons") or []
    if comparisons:
        lines.append("")
        parts = [
            f"vs {c['baseline']} (m={c['m']}): {100 * c['delta']:+.1f} points, "
            f"p = {c['p_value']:.3g}"
            for c in comparisons
        ]
        lines.append(
            "Paired McNemar tests of sgde against each baseline on identical items: "
            + "; ".join(parts)
            + "."
        )
    errors = [c for c in results.get("cells", []) if c.get("status") != "ok"]
    if errors:
        lines.append("")
        lines.append(
            f"{len(errors)} cell(s) did not finish: "
            + "; ".join(f"{c['cell']['id']} ({c.get('status')})" for c in errors)
            + "."
        )
    return "\n".join(lines) + "\n"


def replace_block(text: str, block: str) -> str:
    """Replace the text between the results-table markers.

    Raises:
        ValueError: when the markers are missing or out of order.
    """
    start = text.find(START)
    end = text.find(END)
    if start < 0 or end < 0 or end < start:
        raise ValueError(f"the markers {START} ... {END} are missing or out of order")
    return text[: start + len(START)] + "\n" + block + text[end:]


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="results.json written by `sgde bench`")
    parser.add_argument("--readme", type=Path, help="update this file between the markers")
    args = parser.parse_args(argv)
    try:
        results = json.loads(args.results.read_text(encoding="utf-8"))
        block = render_table(results)
        if args.readme is None:
            sys.stdout.write(block)
            return 0
        readme = args.readme.read_text(encoding="utf-8")
        updated = replace_block(readme, block)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    args.readme.write_text(updated, encoding="utf-8")
    sys.stdout.write(f"updated {args.readme}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
