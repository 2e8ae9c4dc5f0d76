"""Aggregate per-cell bench results into summary rows and paired comparisons.

A *cell* is one (template, m, seed, method) run, stored as a dict (see
:mod:`sgde.evaluation.bench`). The summary pools cells of the same (method, m) over templates
and seeds; the paired comparisons match SGDe and each baseline on identical test items
(same template, seed, m and item id) and apply McNemar's test.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sgde.evaluation.evaluate import ItemResult, summarise
from sgde.evaluation.metrics import mcnemar

__all__ = ["SGDE_METHOD", "compare_paired", "summarise_cells", "teacher_tokens_used"]

SGDE_METHOD = "sgde"


def _ok_cells(cells: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [c for c in cells if c.get("status") == "ok" and c.get("eval")]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def summarise_cells(cells: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One summary row per (method, m), pooled over templates and seeds.

    Each row has: method, m, cells, errors, n_items, n_correct, accuracy, ci_low, ci_high,
    tokens_per_query, latency_median_s, latency_p95_s, teacher_tokens_mean (spent in this run),
    teacher_replayed_mean (answered from the request cache: what those calls had cost when
    first made), teacher_usd_mean (None for methods that do not use the teacher),
    prepare_seconds_mean, iterations_mean, converged_frac.
    """
    groups: dict[tuple[str, int], list[Mapping[str, Any]]] = defaultdict(list)
    for cell in cells:
        key = (str(cell["cell"]["method"]), int(cell["cell"]["m"]))
        groups[key].append(cell)
    rows: list[dict[str, Any]] = []
    for (method, m), group in groups.items():
        ok = _ok_cells(group)
        items = [ItemResult.from_dict(item) for c in ok for item in c["eval"]["items"]]
        pooled = summarise(items, name=method)
        n = pooled.n
        prep = [c.get("prepare") or {} for c in ok]
        teacher = [p["teacher_usage"] for p in prep if p.get("teacher_usage")]
        teacher_tokens = [float(u.get("total_tokens", 0)) for u in teacher]
        teacher_replayed = [float(u.get("replayed_tokens", 0)) for u in teacher]
        teacher_usd = [float(u.get("usd", 0.0)) for u in teacher]
        iterations = [float(p["iterations"]) for p in prep if p.get("iterations") is not None]
        converged = [bool(p["converged"]) for p in prep if p.get("converged") is not None]
        rows.append(
            {
                "method": method,
                "m": m,
                "cells": len(group),
                "errors": len(group) - len(ok),
                "n_items": n,
                "n_correct": pooled.n_correct,
                "accuracy": pooled.accuracy if n else None,
                "ci_low": pooled.ci_low if n else None,
                "ci_high": pooled.ci_high if n else None,
                "tokens_per_query": pooled.tokens_mean if n else None,
                "latency_median_s": pooled.latency_median_s if n else None,
                "latency_p95_s": pooled.latency_p95_s if n else None,
                "teacher_tokens_mean": _mean(teacher_tokens),
                "teacher_replayed_mean": _mean(teacher_replayed),
                "teacher_usd_mean": _mean(teacher_usd),
                "prepare_seconds_mean": _mean([float(p.get("seconds", 0.0)) for p in prep]),
                "iterations_mean": _mean(iterations),
                "converged_frac": _mean([1.0 if c else 0.0 for c in converged]),
            }
        )
    rows.sort(key=lambda r: (r["m"], r["method"] != SGDE_METHOD, r["method"]))
    return rows


def _item_map(cell: Mapping[str, Any]) -> dict[tuple[str, int, str], bool]:
    meta = cell["cell"]
    return {
        (str(meta["template"]), int(meta["seed"]), str(item["id"])): bool(item["correct"])
        for item in cell["eval"]["items"]
    }


def compare_paired(
    cells: Sequence[Mapping[str, Any]], *, reference: str = SGDE_METHOD
) -> list[dict[str, Any]]:
    """McNemar comparisons of ``reference`` against every other method, per m.

    Items are paired by (template, seed, item id) within the same m; only items both methods
    answered are counted. Each row has: m, baseline, n_pairs, both, reference_only,
    baseline_only, neither, reference_accuracy, baseline_accuracy, delta, statistic, p_value.
    """
    by_key: dict[tuple[str, int], dict[tuple[str, int, str], bool]] = defaultdict(dict)
    for cell in _ok_cells(cells):
        meta = cell["cell"]
        by_key[(str(meta["method"]), int(meta["m"]))].update(_item_map(cell))
    rows: list[dict[str, Any]] = []
    ms = sorted({m for (_, m) in by_key})
    methods = sorted({method for (method, _) in by_key if method != reference})
    for m in ms:
        ref = by_key.get((reference, m))
        if not ref:
            continue
        for baseline in methods:
            other = by_key.get((baseline, m))
            if not other:
                continue
            keys = sorted(set(ref) & set(other))
            if not keys:
                continue
            a = [ref[k] for k in keys]
            b = [other[k] for k in keys]
            statistic, p_value = mcnemar(a, b)
            both = sum(1 for x, y in zip(a, b, strict=True) if x and y)
            ref_only = sum(1 for x, y in zip(a, b, strict=True) if x and not y)
            base_only = sum(1 for x, y in zip(a, b, strict=True) if y and not x)
            n = len(keys)
            rows.append(
                {
                    "m": m,
                    "baseline": baseline,
                    "n_pairs": n,
                    "both": both,
                    "reference_only": ref_only,
                    "baseline_only": base_only,
                    "neither": n - both - ref_only - base_only,
                    "reference_accuracy": sum(a) / n,
                    "baseline_accuracy": sum(b) / n,
                    "delta": (sum(a) - sum(b)) / n,
                    "statistic": float(statistic),
                    "p_value": float(p_value),
                }
            )
    return rows


def teacher_tokens_used(row: Mapping[str, Any]) -> tuple[float, float] | None:
    """A summary row's mean teacher tokens to prepare, as (used, replayed): used = spent in
    the run + replayed from the request cache. None for methods without a teacher."""
    spent = row.get("teacher_tokens_mean")
    if spent is None:
        return None
    replayed = float(row.get("teacher_replayed_mean") or 0.0)
    return float(spent) + replayed, replayed
