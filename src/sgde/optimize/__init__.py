"""The SGDe compiler: turn a plan (or a task) plus m labelled rows into a compiled plan.

Typical use::

    from sgde.optimize import CompileSettings, compile_async

    result = await compile_async(
        "Answer the word problem.", rows, teacher=bindings["teacher"],
        student=bindings["student"], sandbox=sandbox, settings=CompileSettings(max_iters=5),
    )
    result.plan      # the compiled plan (provenance in metadata["compile"])
    result.report    # CompileReport: per-iteration loss, critiques, edits, PAC statement

The task is inferred from the rows (or given: ``task=TaskSpec(...)``, see :mod:`sgde.task`);
edit operators live in one registry (:func:`default_registry`, :class:`Operator`).
"""

from sgde.optimize.compiler import (
    CompileResult,
    Metric,
    compile,
    compile_async,
    default_metric,
    resolve_task,
    trainset_hash,
)
from sgde.optimize.events import CompileEvent, EventSink
from sgde.optimize.operators.registry import (
    EditContext,
    Operator,
    OperatorRegistry,
    default_registry,
)
from sgde.optimize.pac import (
    PacStatement,
    delta_for,
    epsilon_for,
    epsilon_occam,
    pac_statement,
    sample_size,
    sample_size_occam,
)
from sgde.optimize.records import EditRecord
from sgde.optimize.report import CompileReport, IterationRecord
from sgde.optimize.settings import CompileSettings

__all__ = [
    "CompileEvent",
    "CompileReport",
    "CompileResult",
    "CompileSettings",
    "EditContext",
    "EditRecord",
    "EventSink",
    "IterationRecord",
    "Metric",
    "Operator",
    "OperatorRegistry",
    "PacStatement",
    "compile",
    "compile_async",
    "default_metric",
    "default_registry",
    "delta_for",
    "epsilon_for",
    "epsilon_occam",
    "pac_statement",
    "resolve_task",
    "sample_size",
    "sample_size_occam",
    "trainset_hash",
]
