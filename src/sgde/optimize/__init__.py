"""The SGDe compiler: turn a plan (or a task) plus m labelled rows into a compiled plan.

Typical use::

    from sgde.optimize import CompileSettings, compile_async

    result = await compile_async(
        "Answer the word problem.", trainset=rows, teacher=bindings["teacher"],
        student=bindings["student"], sandbox=sandbox, settings=CompileSettings(max_iters=5),
    )
    result.plan      # the compiled plan (provenance in metadata["compile"])
    result.report    # CompileReport: per-iteration loss, critiques, edits, PAC statement
"""

from sgde.optimize.compiler import (
    CompileResult,
    Metric,
    compile,
    compile_async,
    default_metric,
    trainset_hash,
)
from sgde.optimize.events import CompileEvent, EventSink
from sgde.optimize.pac import (
    PacStatement,
    delta_for,
    epsilon_for,
    epsilon_occam,
    pac_statement,
    sample_size,
    sample_size_occam,
)
from sgde.optimize.report import CompileReport, IterationRecord
from sgde.optimize.settings import CompileSettings

__all__ = [
    "CompileEvent",
    "CompileReport",
    "CompileResult",
    "CompileSettings",
    "EventSink",
    "IterationRecord",
    "Metric",
    "PacStatement",
    "compile",
    "compile_async",
    "default_metric",
    "delta_for",
    "epsilon_for",
    "epsilon_occam",
    "pac_statement",
    "sample_size",
    "sample_size_occam",
    "trainset_hash",
]
