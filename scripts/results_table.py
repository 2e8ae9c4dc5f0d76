#!/usr/bin/env python3
"""Render the README's results tables from bench ``results.json`` files — never type them by hand.

Usage::

    python scripts/results_table.py bench-gsm_hard_targeted/results.json
    python scripts/results_table.py bench-gsm_hard_targeted/results.json \
        bench-gsm_hard_peers/results.json --readme README.md
    python scripts/results_table.py bench-tasks_general_core/results.json \
        bench-tasks_general_peers/results.json bench-tasks_general_smollm2/results.json \
        --readme README.md

The first prints the Markdown; with ``--readme`` the block between ``<!-- results-table -->``
and ``<!-- /results-table -->`` in the README is replaced (the markers must exist). The table
names the models, m, the number of test items, the seeds, the dates and the token budgets.

A bench of typed tasks (its configuration lists ``tasks``: task families, datasets) gets the
general table instead, between ``<!-- results-table-general -->`` and
``<!-- /results-table-general -->``: one row per (student, method, m), one column per task,
the mean over tasks, and the mean over the tasks where the student alone (method
``student``, its cold-start plan) is below 40 % at that m.

Several results files make one table: one per student, and per student several runs (SGDe and
the baselines from one, the peers ``dspy-gepa``, ``dspy-mipro``, ``textgrad`` from another).
The runs of one student are pooled and paired item by item, so they must have the same teacher
and n_test, and every (task, seed) two runs both have must hold the very same test items (ids
and gold answers); a method at an m given by two runs is refused too. The paired McNemar tests
of SGDe against every other method are computed here from the items (as
:func:`sgde.evaluation.report.aggregate.compare_paired` does). Peers' rows carry their
package's version; below the table come the token budget of each run and what each method spent
preparing, the peers' versions, settings, status, budget use and failure modes, and the rows
that failed (an error instead of an answer: counted as wrong, never dropped).
It runs in sgde's environment: the statistics are sgde's own (one McNemar test for the
report and the README).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sgde.evaluation.metrics import mcnemar
from sgde.evaluation.report.aggregate import teacher_tokens_used

START = "<!-- results-table -->"
END = "<!-- /results-table -->"
GENERAL_START = "<!-- results-table-general -->"
GENERAL_END = "<!-- /results-table-general -->"
SGDE = "sgde"
ALONE = "student"
ALONE_THRESHOLD = 0.40
PEER_PACKAGES = ("dspy", "gepa", "textgrad", "optuna", "litellm", "openai")


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * float(value):.1f}"


def _num(value: Any, digits: int = 0) -> str:
    return "–" if value is None else f"{float(value):,.{digits}f}"


def _join(values: Iterable[Any]) -> str:
    return ", ".join(str(v) for v in values)


def _short(text: str, limit: int = 200) -> str:
    """``text`` without terminal colour codes, cut to ``limit`` characters."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _unique(values: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out


def _label(doc: Mapping[str, Any], index: int) -> str:
    return str(doc.get("_source") or doc.get("name") or f"results file {index + 1}")


def _seed(info: Mapping[str, Any]) -> int:
    return int(info.get("seed", 0))


def _ok_cells(cells: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [c for c in cells if c.get("status") == "ok" and c.get("eval")]


# -- pooling several runs ---------------------------------------------------------------------
def _check_documents(documents: Sequence[Mapping[str, Any]]) -> None:
    if not documents:
        raise ValueError("no results given")
    for i, doc in enumerate(documents):
        if "summary" not in doc or "config" not in doc:
            raise ValueError(f"{_label(doc, i)}: not a bench results.json (no 'summary'/'config')")


def _same(documents: Sequence[Mapping[str, Any]], what: str, get: Any) -> None:
    values = _unique(get(d) for d in documents)
    if len(values) > 1:
        where = "; ".join(f"{_label(d, i)}: {get(d)}" for i, d in enumerate(documents))
        raise ValueError(f"the runs of one table differ in {what} ({where}): they cannot be paired")


def _check_pairing(documents: Sequence[Mapping[str, Any]]) -> None:
    """Refuse runs that overlap in a (method, m) or disagree on a (task, seed)'s items."""
    methods_seen: dict[tuple[str, int], str] = {}
    items_seen: dict[tuple[str, int], tuple[str, frozenset[tuple[str, str]]]] = {}
    for i, doc in enumerate(documents):
        label = _label(doc, i)
        cells = doc.get("cells", [])
        for method, m in {(str(c["cell"]["method"]), int(c["cell"]["m"])) for c in cells}:
            if (method, m) in methods_seen:
                raise ValueError(
                    f"method {method} at m={m} is in both {methods_seen[(method, m)]} and "
                    f"{label}: give each method from one run"
                )
            methods_seen[(method, m)] = label
        for cell in doc.get("cells", []):
            info = cell["cell"]
            items = (cell.get("eval") or {}).get("items") or []
            if not items:
                continue
            key = (str(info["template"]), _seed(info))
            ident = frozenset(
                (str(it["id"]), json.dumps(it.get("gold"), sort_keys=True, default=str))
                for it in items
            )
            previous = items_seen.setdefault(key, (label, ident))
            if previous[1] != ident:
                raise ValueError(
                    f"the test items of {key[0]} (seed {key[1]}) differ between {previous[0]} "
                    f"({len(previous[1])} items) and {label} ({len(ident)} items, "
                    f"{len(previous[1] & ident)} in common): they cannot be paired; run both "
                    "benches with the same task, seeds, n_test and data"
                )


def combine(documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One results document from the runs of one student, paired item by item.

    The result has the keys of a bench ``results.json`` (cells and summary rows of every run,
    the union of their tasks, m and seeds), ``comparisons`` computed from the pooled items,
    ``dates`` and ``sources`` (each run's label, name, budget, date and methods).

    Raises:
        ValueError: not bench results; runs that differ in student, teacher or n_test,
            overlap in a (method, m), or hold different items for a (task, seed).
    """
    _check_documents(documents)
    _same(documents, "student", lambda d: (d.get("models") or {}).get("student"))
    _same(documents, "teacher", lambda d: (d.get("models") or {}).get("teacher"))
    _same(documents, "n_test", lambda d: d["config"].get("n_test"))
    _check_pairing(documents)
    first = documents[0]
    config = dict(first["config"])
    for key in ("templates", "tasks", "methods"):
        merged = _unique(t for d in documents for t in d["config"].get(key) or [])
        if merged:
            config[key] = merged
    for key in ("m", "seeds"):
        config[key] = sorted({int(v) for d in documents for v in d["config"].get(key) or []})
    cells = [c for d in documents for c in d.get("cells", [])]
    summary = sorted(
        (r for d in documents for r in d["summary"]),
        key=lambda r: (int(r.get("m", 0)), r["method"] != SGDE, str(r["method"])),
    )
    dates = sorted({str(d.get("created", ""))[:10] for d in documents})
    return {
        "name": " + ".join(_unique(str(d.get("name", "")) for d in documents)),
        "created": str(first.get("created", "")),
        "dates": dates,
        "sgde_version": ", ".join(_unique(str(d.get("sgde_version", "?")) for d in documents)),
        "models": dict(first.get("models") or {}),
        "config": config,
        "cells": cells,
        "summary": summary,
        "comparisons": compare_paired(cells),
        "sources": [
            {
                "label": _label(d, i),
                "name": d.get("name"),
                "budget": d["config"].get("budget"),
                "date": str(d.get("created", ""))[:10],
                "methods": _unique(str(r["method"]) for r in d["summary"]),
            }
            for i, d in enumerate(documents)
        ],
    }


# -- statistics ---------------------------------------------------------------------------------
def compare_paired(
    cells: Sequence[Mapping[str, Any]], *, reference: str = SGDE
) -> list[dict[str, Any]]:
    """McNemar comparisons of ``reference`` against every other method, per m, on the items
    both answered (paired by task, seed and item id; finished cells only)."""
    by_key: dict[tuple[str, int], dict[tuple[str, int, str], bool]] = defaultdict(dict)
    for cell in _ok_cells(cells):
        info = cell["cell"]
        by_key[(str(info["method"]), int(info["m"]))].update(
            ((str(info["template"]), _seed(info), str(it["id"])), bool(it.get("correct")))
            for it in cell["eval"].get("items") or []
        )
    rows: list[dict[str, Any]] = []
    methods = sorted({method for (method, _) in by_key if method != reference})
    for m in sorted({m for (_, m) in by_key}):
        ref = by_key.get((reference, m))
        for baseline in methods:
            other = by_key.get((baseline, m))
            keys = sorted(set(ref or {}) & set(other or {}))
            if not ref or not other or not keys:
                continue
            a, b = [ref[k] for k in keys], [other[k] for k in keys]
            statistic, p_value = mcnemar(a, b)
            n = len(keys)
            rows.append(
                {
                    "m": m,
                    "baseline": baseline,
                    "n_pairs": n,
                    "tasks": len({k[0] for k in keys}),
                    "reference_only": sum(1 for x, y in zip(a, b, strict=True) if x and not y),
                    "baseline_only": sum(1 for x, y in zip(a, b, strict=True) if y and not x),
                    "reference_accuracy": sum(a) / n,
                    "baseline_accuracy": sum(b) / n,
                    "delta": (sum(a) - sum(b)) / n,
                    "statistic": statistic,
                    "p_value": p_value,
                }
            )
    return rows


def _comparison_line(comparisons: Sequence[Mapping[str, Any]], prefix: str = "") -> str:
    parts = [
        f"vs {prefix}{c['baseline']} (m={c['m']}, {c['n_pairs']} pairs): "
        f"{100 * c['delta']:+.1f} points, p = {c['p_value']:.3g}"
        for c in comparisons
    ]
    return "; ".join(parts)


# -- peers, budgets, failures -------------------------------------------------------------------
def _report(cell: Mapping[str, Any]) -> Mapping[str, Any]:
    report = (cell.get("prepare") or {}).get("report")
    return report if isinstance(report, Mapping) else {}


def peer_versions(cells: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """The package versions each peer method ran with (from its cells' prepare reports)."""
    out: dict[str, dict[str, str]] = {}
    for cell in cells:
        report = _report(cell)
        if report.get("peer"):
            versions = report.get("versions") or {}
            out.setdefault(str(cell["cell"]["method"]), {}).update(
                {k: str(versions[k]) for k in PEER_PACKAGES if k in versions}
            )
    return out


def method_label(method: str, versions: Mapping[str, Mapping[str, str]]) -> str:
    """The method's name in a table row: SGDe in bold, a peer with its main package's version."""
    if method == SGDE:
        return f"**{method}**"
    known = versions.get(method)
    if known is None:
        return method
    main = [f"{k} {known[k]}" for k in ("dspy", "textgrad") if k in known]
    return f"{method} ({', '.join(main) or 'version not recorded'})"


def _prepare_tokens(cell: Mapping[str, Any]) -> int | None:
    """Tokens a cell's preparation used (teacher + student): spent in the run plus those its
    cached calls replayed, so a cell answered from the request cache shows its true cost."""
    prepare = cell.get("prepare") or {}
    usages = [prepare.get("teacher_usage"), prepare.get("student_usage")]
    known = [u for u in usages if isinstance(u, Mapping)]
    if not known:
        return None
    return sum(int(u.get("total_tokens", 0)) + int(u.get("replayed_tokens", 0)) for u in known)


def teacher_tokens(row: Mapping[str, Any]) -> str:
    """A summary row's teacher tokens to prepare: used (spent + replayed from the request
    cache), with the replayed share named when there is one."""
    tokens = teacher_tokens_used(row)
    if tokens is None:
        return "–"
    used, replayed = tokens
    return f"{_num(used)} ({_num(replayed)} cached)" if replayed else _num(used)


def _failed(cell: Mapping[str, Any]) -> list[str]:
    """The errors of the rows that failed (no answer, or no valid one) in a finished cell."""
    items = (cell.get("eval") or {}).get("items") or []
    return [
        str(it.get("error") or "error") for it in items if it.get("error") or not it.get("ok", True)
    ]


def _kind(error: str) -> str:
    """An error's kind: its ``[tag]`` and exception name (``runtime-error UnboundLocalError``,
    ``PeerFailed: AdapterParseError``), else the start of its first line."""
    text = error.strip()
    tag = re.match(r"\[([^\]]+)\]\s*(\(line \d+\)\s*)?", text)
    if tag is not None:
        text = text[tag.end() :]
    names = re.match(r"([A-Za-z_][\w.]*):\s*(?:([A-Za-z_][\w.]*):)?", text)
    if names is not None:
        name = names.group(1)
        if name == "PeerFailed" and names.group(2):
            name += ": " + names.group(2)
    else:
        name = "" if tag is not None else text.splitlines()[0][:50] if text else "error"
    return " ".join(part for part in (tag.group(1) if tag else "", name) if part)


def _kinds(errors: Sequence[str]) -> str:
    counts: dict[str, int] = {}
    for error in errors:
        counts[_kind(error)] = counts.get(_kind(error), 0) + 1
    return ", ".join(f"{kind} ×{n}" for kind, n in counts.items())


def budget_lines(results: Mapping[str, Any]) -> list[str]:
    """Each run's token budget and what each method spent preparing (teacher + student)."""
    sources = results.get("sources") or [
        {"label": results.get("name"), "budget": (results.get("config") or {}).get("budget")}
    ]
    budgets = _unique(s.get("budget") for s in sources)
    if len(budgets) == 1:
        head = (
            f"Budget: {_num(budgets[0])} tokens (teacher + student) to prepare each cell, the same "
            "for SGDe and every optimiser"
            if budgets[0] is not None
            else "Budget: none (unlimited)"
        )
    else:
        head = "Budgets differ between the runs: " + "; ".join(
            f"{_join(s.get('methods') or [])} ({s.get('label')}): {_num(s.get('budget'))} tokens"
            for s in sources
        )
    spent: dict[tuple[str, int], list[int]] = defaultdict(list)
    for cell in results.get("cells", []):
        tokens = _prepare_tokens(cell)
        if tokens is not None:
            spent[(str(cell["cell"]["method"]), int(cell["cell"]["m"]))].append(tokens)
    parts = [
        f"{method} (m={m}) {_num(min(v))}–{_num(max(v))}"
        if len(v) > 1
        else f"{method} (m={m}) {_num(v[0])}"
        for (method, m), v in sorted(spent.items(), key=lambda kv: (kv[0][1], kv[0][0]))
    ]
    used = "; used per cell (spent, or replayed from the request cache): "
    return [head + (used + "; ".join(parts) if parts else "") + "."]


def peer_lines(results: Mapping[str, Any]) -> list[str]:
    """Per peer: optimiser, versions, settings; per cell: status, budget use, failures."""
    by_peer: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for cell in results.get("cells", []):
        if _report(cell).get("peer"):
            by_peer[str(cell["cell"]["method"])].append(cell)
    versions = peer_versions(results.get("cells", []))
    lines: list[str] = []
    for peer, cells in by_peer.items():
        first = _report(cells[0])
        settings = _unique(
            json.dumps(_report(c).get("settings") or {}, sort_keys=True) for c in cells
        )
        outcomes = []
        for cell in cells:
            report, info = _report(cell), cell["cell"]
            budget = report.get("budget") or {}
            text = (
                f"{info['template']} m={info['m']} s{_seed(info)}: {report.get('status')}, "
                f"spent {_num(budget.get('spent'))} of {_num(budget.get('tokens'))} tokens, "
                f"{budget.get('refused_calls', 0)} call(s) refused"
            )
            if report.get("failure"):
                text += f", failed: {_short(str(report['failure']).splitlines()[0])}"
            for note in report.get("notes") or []:
                text += f"; note: {_short(str(note))}"
            outcomes.append(text)
        lines.append(
            f"Peer `{peer}`: `{first.get('optimizer')}` from "
            f"{_join(f'{k} {v}' for k, v in versions.get(peer, {}).items())}, unmodified; "
            f"settings {' / '.join(settings)}; " + "; ".join(outcomes) + "."
        )
    return lines


def failure_lines(results: Mapping[str, Any]) -> list[str]:
    """The finished cells' rows that failed, per cell, with their error kinds."""
    parts = []
    for cell in _ok_cells(results.get("cells", [])):
        errors = _failed(cell)
        if errors:
            info, n = cell["cell"], len(cell["eval"].get("items") or [])
            parts.append(
                f"{info['method']} {info['template']} m={info['m']}: {len(errors)}/{n} "
                f"({_kinds(errors)})"
            )
    if not parts:
        return []
    return [
        "Rows that failed (an error instead of an answer, counted as wrong): "
        + "; ".join(parts)
        + "."
    ]


def unfinished_lines(cells: Iterable[Mapping[str, Any]]) -> list[str]:
    errors = [c for c in cells if c.get("status") != "ok"]
    if not errors:
        return []
    return [
        f"{len(errors)} cell(s) did not finish: "
        + "; ".join(f"{c['cell']['id']} ({c.get('status')})" for c in errors)
        + "."
    ]


# -- the GSM table ------------------------------------------------------------------------------
def render_table(results: Mapping[str, Any]) -> str:
    """The Markdown block: a caption line, the table, the paired comparisons and the notes.

    Args:
        results: A parsed ``results.json``, or several pooled by :func:`combine`.

    Returns:
        Markdown text ending with a newline.

    Raises:
        ValueError: when the document is not a bench results file.
    """
    if "sources" not in results:
        results = combine([results])
    config = results["config"]
    models = results.get("models", {})
    templates = config.get("templates", [])
    cells = results.get("cells", [])
    versions = peer_versions(cells)
    lines = [
        f"Benchmark `{results.get('name', '')}` run on {', '.join(results['dates'])} with sgde "
        f"{results.get('sgde_version', '?')}: student `{models.get('student')}`, teacher "
        f"`{models.get('teacher')}`; {len(templates)} GSM-Hard template(s) "
        f"({_join(templates)}); m ∈ {{{_join(config.get('m', []))}}}; "
        f"{config.get('n_test')} held-out test items per template and seed; "
        f"seeds {{{_join(config.get('seeds', []))}}}. "
        "Accuracy in % with Wilson 95 % intervals; *failed* = rows with an error instead of an "
        "answer (counted as wrong); tokens per test query are the student's; teacher tokens "
        "are used once, to prepare (compile / optimise), and include calls replayed from the "
        "request cache (shown as cached).",
        "",
        "| method | m | accuracy % | 95 % CI | items | failed | student tokens / query "
        "| latency median (s) | teacher tokens to prepare | iterations |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    failed: dict[tuple[str, int], int] = defaultdict(int)
    for cell in _ok_cells(cells):
        failed[(str(cell["cell"]["method"]), int(cell["cell"]["m"]))] += len(_failed(cell))
    rows = sorted(  # per m: sgde, the baselines, then the peers
        results["summary"],
        key=lambda r: (int(r.get("m", 0)), r["method"] != SGDE, r["method"] in versions),
    )
    for row in rows:
        ci = (
            f"{_pct(row['ci_low'])}–{_pct(row['ci_high'])}"
            if row.get("accuracy") is not None
            else "–"
        )
        lines.append(
            f"| {method_label(str(row['method']), versions)} | {row['m']} | "
            f"{_pct(row.get('accuracy'))} | {ci} | {row.get('n_items', 0)} | "
            f"{failed.get((str(row['method']), int(row['m'])), 0)} | "
            f"{_num(row.get('tokens_per_query'))} | {_num(row.get('latency_median_s'), 2)} | "
            f"{teacher_tokens(row)} | {_num(row.get('iterations_mean'), 1)} |"
        )
    notes: list[str] = []
    if results.get("comparisons"):
        notes.append(
            "Paired McNemar tests of sgde against each method on identical items: "
            + _comparison_line(results["comparisons"])
            + "."
        )
    notes += budget_lines(results) + peer_lines(results) + failure_lines(results)
    notes += unfinished_lines(cells)
    for note in notes:
        lines += ["", note]
    return "\n".join(lines) + "\n"


# -- the general table ----------------------------------------------------------------------------
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
    return _unique(ids)


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


def by_student(documents: Sequence[Mapping[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The documents grouped by student (first appearance first), each group pooled by
    :func:`combine`."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for doc in documents:
        groups.setdefault(str((doc.get("models") or {}).get("student")), []).append(doc)
    return [(student, combine(group)) for student, group in groups.items()]


def render_general(documents: Sequence[Mapping[str, Any]]) -> str:
    """The general table of one or more typed-task bench results (runs of one or more
    students; the runs of a student are pooled and paired by :func:`combine`).

    Raises:
        ValueError: a document is not a typed-task bench results file, or the runs of one
            student cannot be paired.
    """
    _check_documents(documents)
    for doc in documents:
        if not is_general(doc):
            raise ValueError("not a typed-task bench results.json (no 'config.tasks')")
    groups = by_student(documents)
    first = groups[0][1]
    config = first["config"]
    tasks = _task_ids({"tasks": [t for _, g in groups for t in g["config"].get("tasks") or []]})
    dates = sorted({d for _, g in groups for d in g["dates"]})
    versions = _unique(v for _, g in groups for v in str(g["sgde_version"]).split(", "))
    lines = [
        f"Benchmark `{' + '.join(_unique(g['name'] for _, g in groups))}` run on "
        f"{', '.join(dates)} with sgde {', '.join(versions)}: student(s) "
        f"{', '.join(f'`{s}`' for s, _ in groups)}, teacher "
        f"`{first.get('models', {}).get('teacher')}`; {len(tasks)} task(s); "
        f"m ∈ {{{_join(config.get('m', []))}}}; {config.get('n_test')} held-out rows per task "
        f"and seed; seeds {{{_join(config.get('seeds', []))}}}. Accuracy in % per task "
        "(– : not run); *mean* over all tasks; *alone<40* = mean over the tasks where the "
        f"student alone (method `{ALONE}`: the cold-start plan) scores below 40 % at that m.",
        "",
        "| student | method | m | " + " | ".join(tasks) + " | mean | alone<40 |",
        "|---|---|---|" + "---|" * (len(tasks) + 2),
    ]
    notes: list[str] = []
    for student, doc in groups:
        acc = _cell_accuracy(doc)
        labels = peer_versions(doc["cells"])
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
                subset = _mean_pct([acc.get((t, method, int(m))) for t in hard]) if hard else "–"
                lines.append(
                    f"| {student} | {method_label(method, labels)} | {m} | "
                    + " | ".join(_pct(v) for v in values)
                    + f" | {_mean_pct(values)} | {subset} |"
                )
    if notes:
        lines += ["", "; ".join(notes) + "."]
    for student, doc in groups:
        if doc["comparisons"]:
            lines += [
                "",
                f"`{student}`: paired McNemar tests of sgde against each method on identical "
                "rows, pooled over the tasks both ran: "
                + _comparison_line(doc["comparisons"])
                + ".",
            ]
    outcomes = []
    for student, doc in groups:
        for cell in doc["cells"]:
            info = cell["cell"]
            if info["method"] != SGDE:
                continue
            prepare = cell.get("prepare") or {}
            reason = prepare.get("stop_reason") or cell.get("error") or cell.get("status")
            outcomes.append(f"{info['template']} m={info['m']} ({student}): {reason}")
    if outcomes:
        lines += ["", "SGDe compile outcomes: " + "; ".join(outcomes) + "."]
    for student, doc in groups:
        prefix = f"`{student}`: " if len(groups) > 1 else ""
        for note in budget_lines(doc) + peer_lines(doc) + failure_lines(doc):
            lines += ["", prefix + note]
    unfinished = unfinished_lines(c for _, doc in groups for c in doc["cells"])
    for note in unfinished:
        lines += ["", note]
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
        help="results.json files written by `sgde bench` (one table: one or more runs per "
        "student; the runs of a student are paired item by item)",
    )
    parser.add_argument("--readme", type=Path, help="update this file between the markers")
    args = parser.parse_args(argv)
    try:
        documents = [
            {**json.loads(p.read_text(encoding="utf-8")), "_source": str(p)} for p in args.results
        ]
        kinds = {is_general(d) for d in documents}
        if len(kinds) > 1:
            raise ValueError("GSM-Hard and typed-task results make different tables: one at a time")
        if kinds == {True}:
            block = render_general(documents)
            markers = {"start_marker": GENERAL_START, "end_marker": GENERAL_END}
        else:
            block = render_table(combine(documents))
            markers = {"start_marker": START, "end_marker": END}
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
