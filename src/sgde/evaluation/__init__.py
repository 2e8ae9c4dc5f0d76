"""Evaluation: datasets, task families, metrics, baselines, runs and reports.

The main entry points::

    from sgde.evaluation import evaluate_plan, load_bench_config, run_bench

    result = evaluate_plan(plan, rows, {"student": backend}, sandbox=pool)
    print(result.accuracy, result.ci_low, result.ci_high)

Task families for the typed-task benchmark live in :mod:`sgde.evaluation.tasks`
(``get_family("date-add").generate(20, seed=0)``).

Names are imported from their modules on first use (the bench pulls in the compiler and the
model backends, which ``sgde eval`` alone does not need). Baselines and prompt optimisers
live in :mod:`sgde.evaluation.baselines` and :mod:`sgde.evaluation.optimizers`, report
rendering in :mod:`sgde.evaluation.report`, the GSM-Hard tooling (vendored data, templates,
synthesis) in :mod:`sgde.evaluation.gsm`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sgde.evaluation.bench import BenchOutcome, run_bench, run_bench_async
    from sgde.evaluation.bench_config import BenchConfig, load_bench_config
    from sgde.evaluation.demo import DemoOptions, run_demo_async
    from sgde.evaluation.engines import InProcessEngine, RayEngine, WorkerSpec
    from sgde.evaluation.evaluate import (
        EvalResult,
        ItemResult,
        evaluate_plan,
        evaluate_plan_async,
    )
    from sgde.evaluation.gsm.datasets import (
        Gsm8kRow,
        GsmHardRow,
        load_gsm8k_test,
        load_gsm_hard,
    )
    from sgde.evaluation.gsm.synth import synthesise, synthesise_async
    from sgde.evaluation.gsm.templates import (
        Template,
        TemplateFailure,
        get_template,
        load_templates,
    )
    from sgde.evaluation.gsm.templatiser import templatise
    from sgde.evaluation.metrics import answer_correct, mcnemar, wilson_interval
    from sgde.evaluation.sgde_method import SgdeMethod, resolve_method
    from sgde.evaluation.tasks import FAMILIES, TaskFamily, family_names, get_family
    from sgde.runtime.jsonl import read_jsonl, write_jsonl

_LAZY: dict[str, str] = {
    **dict.fromkeys(("BenchOutcome", "run_bench", "run_bench_async"), "sgde.evaluation.bench"),
    **dict.fromkeys(("BenchConfig", "load_bench_config"), "sgde.evaluation.bench_config"),
    **dict.fromkeys(
        ("Gsm8kRow", "GsmHardRow", "load_gsm8k_test", "load_gsm_hard"),
        "sgde.evaluation.gsm.datasets",
    ),
    **dict.fromkeys(("read_jsonl", "write_jsonl"), "sgde.runtime.jsonl"),
    **dict.fromkeys(("DemoOptions", "run_demo_async"), "sgde.evaluation.demo"),
    **dict.fromkeys(("InProcessEngine", "RayEngine", "WorkerSpec"), "sgde.evaluation.engines"),
    **dict.fromkeys(
        ("EvalResult", "ItemResult", "evaluate_plan", "evaluate_plan_async"),
        "sgde.evaluation.evaluate",
    ),
    **dict.fromkeys(("answer_correct", "mcnemar", "wilson_interval"), "sgde.evaluation.metrics"),
    **dict.fromkeys(("SgdeMethod", "resolve_method"), "sgde.evaluation.sgde_method"),
    **dict.fromkeys(
        ("FAMILIES", "TaskFamily", "family_names", "get_family"), "sgde.evaluation.tasks"
    ),
    **dict.fromkeys(("synthesise", "synthesise_async"), "sgde.evaluation.gsm.synth"),
    **dict.fromkeys(
        ("Template", "TemplateFailure", "get_template", "load_templates"),
        "sgde.evaluation.gsm.templates",
    ),
    "templatise": "sgde.evaluation.gsm.templatiser",
}

__all__ = [
    "FAMILIES",
    "BenchConfig",
    "BenchOutcome",
    "DemoOptions",
    "EvalResult",
    "Gsm8kRow",
    "GsmHardRow",
    "InProcessEngine",
    "ItemResult",
    "RayEngine",
    "SgdeMethod",
    "TaskFamily",
    "Template",
    "TemplateFailure",
    "WorkerSpec",
    "answer_correct",
    "evaluate_plan",
    "evaluate_plan_async",
    "family_names",
    "get_family",
    "get_template",
    "load_bench_config",
    "load_gsm8k_test",
    "load_gsm_hard",
    "load_templates",
    "mcnemar",
    "read_jsonl",
    "resolve_method",
    "run_bench",
    "run_bench_async",
    "run_demo_async",
    "synthesise",
    "synthesise_async",
    "templatise",
    "wilson_interval",
    "write_jsonl",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
