#!/usr/bin/env python3
"""Render the README's results table from a bench ``results.json`` — never type it by hand.

Usage::

    python scripts/results_table.py bench-gsm_hard_targeted/results.json
    python scripts/results_table.py bench-gsm_hard_targeted/results.json --readme README.md
    python scripts/results_table.py bench-tasks_general/results.json \
        bench-tasks_general_smollm2/results.json --readme README.md

The first prints the Markdown; the second replaces the block between
``<!-- results-table -->`` and ``<!-- /results-table -->`` in the README (the markers must
exist). The table names the models, m, the number of test items, the seeds and the date.

A bench of typed tasks (its configuration lists ``tasks``: task families, datasets) gets the
general table instead, between ``<!-- results-table-general -->`` and
``<!-- /results-table-general -->``: one row per (student, method, m), one column per task,
the mean over tasks, and the mean over the tasks where the student alone (method
``student``, its cold-start plan) is below 40 % at that m. Several results files (one per
student) make one table. Only the standard library is used, so the script runs without sgde
installed.
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
GENERAL_START = "<!-- results-table-general -->"
GENERAL_END = "<!-- /results-table-general -->"
SGDE = "sgde"
ALONE = "student"
ALONE_THRESHOLD = 0.40


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


def is_general(results: Mapping[str, Any]) -> bool:
    """Whether a results document is a bench of typed tasks (its config lists ``tasks``)."""
    return bool((results.get("config") or {}).get("tasks"))


def _task_ids(config: Mapping[str, Any]) -> list[str]:
    ids = [str(t) for t in config.get("templates") or []]
    for item in config.get("tasks") or []:
        if isinstance(item, str):
            ids.append(item)
        else:
            name = item.get("name") or item.get("family") or Path(str(item["dataset"])).stem
            ids.append(str(name))
    return ids


def _cell_accuracy(results: Mapping[str, Any]) -> dict[tuple[str, str, int], float | None]:
    """Accuracy per (task, method, m), pooled over seeds; None when no cell finished."""
    counts: dict[tuple[str, str, int], list[int]] = {}
    for cell in results.get("cells", []):
        info = cell["cell"]
        key = (str(info["template"]), str(info["method"]), int(info["m"]))
        tally = counts.setdefault(key, [0, 0])
        if cell.get("status") == "ok" and cell.get("eval"):
            items = cell["eval"].get("items") or []
            tally[0] += sum(1 for item in items if item.get("correct"))
            tally[1] += len(items)
    return {k: (c / n if n else None) for k, (c, n) in counts.items()}


def _mean_pct(values: Sequence[float | None]) -> str:
    known = [v for v in values if v is not None]
    return _pct(sum(known) / len(known)) if known and len(known) == len(values) else "–"


def render_general(documents: Sequence[Mapping[str, Any]]) -> str:
    """The general table of one or more typed-task bench results (one per student).

    Raises:
        ValueError: a document is not a typed-task bench results file.
    """
    if not documents:
        raise ValueError("no results given")
    for doc in documents:
        if "summary" not in doc or "config" not in doc or not is_general(doc):
            raise ValueError("not a typed-task bench results.json (no 'config.tasks')")
    first = documents[0]
    config = first["config"]
    tasks = _task_ids(config)
    students = [str(d.get("models", {}).get("student")) for d in documents]
    dates = sorted({str(d.get("created", ""))[:10] for d in documents})
    lines = [
        f"Benchmark `{first.get('name', '')}` run on {', '.join(dates)} with sgde "
        f"{first.get('sgde_version', '?')}: student(s) {', '.join(f'`{s}`' for s in students)}, "
        f"teacher `{first.get('models', {}).get('teacher')}`; {len(tasks)} task(s); "
        f"m ∈ {{{_join(config.get('m', []))}}}; {config.get('n_test')} held-out rows per task "
        f"and seed; seeds {{{_join(config.get('seeds', []))}}}. Accuracy in % per task; "
        "*mean* over all tasks; *alone<40* = mean over the tasks where the student alone "
        f"(method `{ALONE}`: the cold-start plan) scores below 40 % at that m.",
        "",
        "| student | method | m | " + " | ".join(tasks) + " | mean | alone<40 |",
        "|---|---|---|" + "---|" * (len(tasks) + 2),
    ]
    notes: list[str] = []
    for student, doc in zip(students, documents, strict=True):
        acc = _cell_accuracy(doc)
        order = list(dict.fromkeys(str(r["method"]) for r in doc["summary"]))
        methods = sorted(order, key=lambda name: (name != ALONE, name == SGDE, order.index(name)))
        for m in doc["config"].get("m", []):
            hard = [t for t in tasks if (a := acc.get((t, ALONE, int(m)))) is not None and a < 0.4]
            if (ALONE, int(m)) in {(k[1], k[2]) for k in acc}:
                notes.append(
                    f"`{student}`, m={m}: student alone < 40 % on "
                    + (", ".join(hard) if hard else "no task")
                )
            for method in methods:
                values = [acc.get((t, method, int(m))) for t in tasks]
                if all(v is None for v in values):
                    continue
                name = f"**{method}**" if method == SGDE else method
                subset = _mean_pct([acc.get((t, method, int(m))) for t in hard]) if hard else "–"
                lines.append(
                    f"| {student} | {name} | {m} | "
                    + " | ".join(_pct(v) for v in values)
                    + f" | {_mean_pct(values)} | {subset} |"
                )
    if notes:
        lines += ["", "; ".join(notes) + "."]
    outcomes = []
    for student, doc in zip(students, documents, strict=True):
        for cell in doc.get("cells", []):
            info = cell["cell"]
            if info["method"] != SGDE:
                continue
            prepare = cell.get("prepare") or {}
            reason = prepare.get("stop_reason") or cell.get("error") or cell.get("status")
            outcomes.append(f"{info['template']} m={info['m']} ({student}): {reason}")
    if outcomes:
        lines += ["", "SGDe compile outcomes: " + "; ".join(outcomes) + "."]
    errors = [c for d in documents for c in d.get("cells", []) if c.get("status") != "ok"]
    if errors:
        lines += [
            "",
            f"{len(errors)} cell(s) did not finish: "
            + "; ".join(f"{c['cell']['id']} ({c.get('status')})" for c in errors)
            + ".",
        ]
    return "\n".join(lines) + "\n"


def replace_block(
    text: str, block: str, *, start_marker: str = START, end_marker: str = END
) -> str:
    """Replace the text between the results-table markers.

    Raises:
        ValueError: when the markers are missing or out of order.
    """
    start = text.find(start_marker)
    end = text.find(end_marker)
    if start < 0 or end < 0 or end < start:
        raise ValueError(f"the markers {start_marker} ... {end_marker} are missing or out of order")
    return text[: start + len(start_marker)] + "\n" + block + text[end:]


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "results",
        type=Path,
        nargs="+",
        help="results.json written by `sgde bench` (typed-task benches: one per student)",
    )
    parser.add_argument("--readme", type=Path, help="update this file between the markers")
    args = parser.parse_args(argv)
    try:
        documents = [json.loads(p.read_text(encoding="utf-8")) for p in args.results]
        general = any(is_general(d) for d in documents)
        if general:
            block = render_general(documents)
            markers = {"start_marker": GENERAL_START, "end_marker": GENERAL_END}
        elif len(documents) == 1:
            block = render_table(documents[0])
            markers = {"start_marker": START, "end_marker": END}
        else:
            raise ValueError("several results files make one table only for typed-task benches")
        if args.readme is None:
            sys.stdout.write(block)
            return 0
        readme = args.readme.read_text(encoding="utf-8")
        updated = replace_block(readme, block, **markers)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    args.readme.write_text(updated, encoding="utf-8")
    sys.stdout.write(f"updated {args.readme}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
