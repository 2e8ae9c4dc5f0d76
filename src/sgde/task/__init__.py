"""Typed tasks: field types, task specs inferred from rows, and metrics.

The one home of what sgde assumes about a task::

    from sgde.task import infer_task, default_metric

    spec = infer_task(rows, description="Add N days to a date", where="rows.jsonl")
    print(spec.describe())          # in start: date ... / out answer: date ...
    score = default_metric(spec)(row, outputs)   # Score(value, feedback, fields)

Types (:class:`FieldType`): ``integer``, ``number``, ``string``, ``boolean``, ``date``,
``list[T]``, ``set[T]`` and ``enum[a,b,c]``, each with a JSON schema for the student, a
coercion and a metric. :func:`answer_correct` is the one gold matcher of sgde.
"""

from __future__ import annotations

from sgde.task.infer import gold_type, infer_type
from sgde.task.metrics import (
    DefaultMetric,
    Metric,
    Score,
    UserMetric,
    answer_correct,
    default_metric,
    load_metric,
    metric_name,
    safe_score,
    to_score,
)
from sgde.task.spec import (
    OUTPUT_NAMES,
    TaskSpec,
    declared_outputs,
    infer_task,
    parse_field_option,
    row_where,
)
from sgde.task.types import FieldType, TaskValueError, parse_date

__all__ = [
    "OUTPUT_NAMES",
    "DefaultMetric",
    "FieldType",
    "Metric",
    "Score",
    "TaskSpec",
    "TaskValueError",
    "UserMetric",
    "answer_correct",
    "declared_outputs",
    "default_metric",
    "gold_type",
    "infer_task",
    "infer_type",
    "load_metric",
    "metric_name",
    "parse_date",
    "parse_field_option",
    "row_where",
    "safe_score",
    "to_score",
]
