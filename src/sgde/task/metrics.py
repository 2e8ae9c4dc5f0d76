"""Metrics: scoring a plan's outputs on a row, the one gold matcher, and user metrics.

A metric is any callable ``metric(row, outputs)`` (``row`` the dataset row with its gold
outputs, ``outputs`` what the plan produced) returning a float in ``[0, 1]``, a bool, a
:class:`Score`, or ``(score, feedback)``; :func:`to_score` normalises every form and
:func:`safe_score` turns a failing metric into a :class:`~sgde.errors.TaskMetricError` that
names the metric and the row. Feedback text reaches the teacher's critique.

:func:`default_metric` scores each output field with its type's
:meth:`~sgde.task.types.FieldType.correct`; :func:`answer_correct` is the one gold matcher
used everywhere a prediction is compared with a gold value.

User metrics (``--metric module:function`` or ``--metric path/to/file.py:function``) are the
user's own code: :func:`load_metric` imports and runs them in this process, like any Python
plugin, with the user's permissions. (Teacher-written code is different: it is untrusted and
only ever runs in the sandbox.)
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import math
import numbers
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from sgde.errors import TaskMetricError, TaskSpecError
from sgde.task.infer import gold_type, same_value
from sgde.task.spec import TaskSpec
from sgde.task.types import FieldType

__all__ = [
    "DefaultMetric",
    "Metric",
    "Score",
    "UserMetric",
    "answer_correct",
    "default_metric",
    "load_metric",
    "metric_name",
    "safe_score",
    "to_score",
]

_SCORE_SLACK = 1e-9
"""Scores this far outside [0, 1] (float rounding) are clamped rather than refused."""
_FEEDBACK_VALUE_CHARS = 80


@dataclass(frozen=True)
class Score:
    """The score of one row.

    Attributes:
        value: In ``[0, 1]``; 1 is right.
        feedback: Text for the teacher's critique (``"field 'due': got 2024-01-06, expected
            2024-01-05"``); empty when there is nothing to say.
        fields: Per-field correctness, when known (partial credit).
    """

    value: float
    feedback: str = ""
    fields: Mapping[str, bool] = field(default_factory=dict)

    def __float__(self) -> float:
        return float(self.value)


Metric = Callable[
    [Mapping[str, Any], Mapping[str, Any]], Union[float, bool, Score, "tuple[float, str]"]
]
"""``metric(row, outputs) -> score``: a float in [0, 1], a bool, a :class:`Score` or
``(float, feedback)``."""


def metric_name(metric: Any) -> str:
    """A metric's name for messages: its reference (``"mod:fn"``) or its qualified name."""
    ref = getattr(metric, "ref", None)
    if isinstance(ref, str):
        return ref
    name = getattr(metric, "__qualname__", None) or getattr(metric, "__name__", None)
    return str(name) if name else type(metric).__name__


def _bad_value(raw: Any, where: str, why: str) -> TaskMetricError:
    return TaskMetricError(f"{where}: returned {_short(raw)}: {why}")


def to_score(raw: Any, *, where: str) -> Score:
    """Normalise a metric's return value.

    Args:
        raw: A bool, a real number in [0, 1], a :class:`Score`, or a ``(number, feedback)``
            tuple with text feedback.
        where: The metric and row, for messages (``"metric 'mod:fn' on rows.jsonl:3"``).

    Raises:
        TaskMetricError: for any other value, NaN, or a score outside [0, 1].
    """
    feedback = ""
    fields: Mapping[str, bool] = {}
    value: Any = raw
    if isinstance(raw, Score):
        value, feedback, fields = raw.value, raw.feedback, raw.fields
    elif isinstance(raw, tuple):
        if len(raw) != 2 or not isinstance(raw[1], str):
            raise _bad_value(raw, where, "a tuple must be (score, feedback text)")
        value, feedback = raw
    if not isinstance(feedback, str):
        raise _bad_value(raw, where, "feedback must be text")
    if isinstance(value, bool) or getattr(getattr(value, "dtype", None), "kind", "") == "b":
        return Score(1.0 if value else 0.0, feedback, fields)  # bool, or a numpy bool
    if not isinstance(value, numbers.Real):
        raise _bad_value(
            raw, where, "expected a float in [0, 1], a bool, a Score or (float, feedback)"
        )
    number = float(value)
    if math.isnan(number):
        raise _bad_value(raw, where, "a score cannot be NaN")
    if not -_SCORE_SLACK <= number <= 1 + _SCORE_SLACK:
        raise _bad_value(raw, where, "a score must lie in [0, 1]")
    return Score(min(1.0, max(0.0, number)), feedback, dict(fields))


def safe_score(
    metric: Metric, row: Mapping[str, Any], outputs: Mapping[str, Any], *, where: str
) -> Score:
    """Call a metric and normalise its score.

    Args:
        metric: The metric.
        row: The dataset row (with gold outputs).
        outputs: The plan's outputs on that row.
        where: The row, for messages (``"rows.jsonl:3"``).

    Raises:
        TaskMetricError: when the metric raises (``"metric 'mod:fn' raised ValueError on
            rows.jsonl:3: ..."``) or returns something that is not a score.
    """
    name = metric_name(metric)
    try:
        raw = metric(row, outputs)
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise TaskMetricError(
            f"metric '{name}' raised {type(exc).__name__} on {where}"
            + (f": {detail}" if detail else ""),
            metric=name,
            where=where,
        ) from exc
    return to_score(raw, where=f"metric '{name}' on {where}")


def answer_correct(pred: Any, gold: Any, ftype: FieldType | None = None) -> bool:
    """Whether a prediction is right for a gold value: the one gold matcher of sgde.

    With ``ftype`` the type's :meth:`~sgde.task.types.FieldType.correct` decides. Without
    it the type is read from the gold value alone (numbers and numeric text -> number, ISO
    dates -> date, booleans, lists of scalars, else text); values no type describes
    (objects) compare by :func:`~sgde.runtime.numbers.vote_key`. Numbers always compare by
    :func:`~sgde.runtime.numbers.numbers_match`: an absolute tolerance or the gold's
    decimals, never a relative tolerance.

    Args:
        pred: The prediction (``None`` is wrong).
        gold: The gold value.
        ftype: The field's type, when known.
    """
    if pred is None or gold is None:
        return False
    if ftype is None:
        ftype = gold_type(gold)
        if ftype is None:
            return same_value(pred, gold)
    return ftype.correct(pred, gold)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _FEEDBACK_VALUE_CHARS else text[: _FEEDBACK_VALUE_CHARS - 3] + "..."


class DefaultMetric:
    """The metric of a task: the mean over its outputs of each type's ``correct``.

    Output fields without a gold value in the row are not scored; a row with none scores 0.
    The :class:`Score` holds the per-field results and feedback naming the wrong fields.
    """

    ref = "default"

    def __init__(self, outputs: Mapping[str, FieldType | None]) -> None:
        self.outputs = dict(outputs)

    def __call__(self, row: Mapping[str, Any], outputs: Mapping[str, Any]) -> Score:
        fields: dict[str, bool] = {}
        wrong: list[str] = []
        for name, ftype in self.outputs.items():
            gold = row.get(name)
            if gold is None:
                continue
            pred = outputs.get(name) if isinstance(outputs, Mapping) else None
            ok = answer_correct(pred, gold, ftype)
            fields[name] = ok
            if not ok:
                got = "no value" if pred is None else _short(pred)
                wrong.append(f"field '{name}': got {got}, expected {_short(gold)}")
        if not fields:
            return Score(0.0, "the row has no gold value for any output", {})
        return Score(sum(fields.values()) / len(fields), "; ".join(wrong), fields)

    def __repr__(self) -> str:
        return f"DefaultMetric({', '.join(self.outputs)})"


def default_metric(spec: TaskSpec | Sequence[str]) -> DefaultMetric:
    """The default metric of a task (or of output names, each typed from its gold value).

    Args:
        spec: The task, or the output field names when no spec is known.
    """
    if isinstance(spec, TaskSpec):
        return DefaultMetric(spec.outputs)
    return DefaultMetric(dict.fromkeys(spec))


class UserMetric:
    """A user's metric loaded from a reference; ``ref`` names it in messages."""

    def __init__(self, ref: str, func: Callable[..., Any]) -> None:
        self.ref = ref
        self.func = func

    def __call__(self, row: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
        return self.func(row, outputs)

    def __repr__(self) -> str:
        return f"UserMetric({self.ref!r})"


def _is_path(module_part: str) -> bool:
    return module_part.endswith(".py") or "/" in module_part or "\\" in module_part


def _load_file(ref: str, module_part: str) -> Any:
    path = Path(module_part).expanduser()
    if not path.is_file():
        raise TaskSpecError(
            f"metric '{ref}': file {module_part} not found",
            hint="give path/to/file.py:function (relative to the current directory)",
        )
    resolved = path.resolve()
    name = "sgde_user_metric_" + hashlib.sha256(str(resolved).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise TaskSpecError(f"metric '{ref}': {module_part} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise TaskSpecError(
            f"metric '{ref}': importing {module_part} raised {type(exc).__name__}: {exc}",
            hint="fix the metric file; it is imported like any Python module",
        ) from exc
    return module


def _load_module(ref: str, module_part: str) -> Any:
    try:
        return importlib.import_module(module_part)
    except ModuleNotFoundError as exc:
        if exc.name and module_part.startswith(exc.name):
            raise TaskSpecError(
                f"metric '{ref}': no module named '{module_part}'",
                hint="install it or add its folder to PYTHONPATH, or give a file: "
                "path/to/file.py:function",
            ) from None
        raise TaskSpecError(
            f"metric '{ref}': importing '{module_part}' failed: {exc}",
            hint="install what the metric module imports",
        ) from exc
    except Exception as exc:
        raise TaskSpecError(
            f"metric '{ref}': importing '{module_part}' raised {type(exc).__name__}: {exc}",
            hint="fix the metric module",
        ) from exc


def load_metric(ref: str) -> UserMetric:
    """Load a user metric from ``package.module:function`` or ``path/to/file.py:function``.

    The function is called as ``function(row, outputs)`` and may return a float in [0, 1],
    a bool, a :class:`Score` or ``(float, feedback)``. It is the user's own code and runs in
    this process (unlike teacher code, which only runs in the sandbox). ``function`` may be
    dotted (``Class.method``).

    Raises:
        TaskSpecError: naming the reference and what is wrong: no ``:``, no such file or
            module, an import that fails, no such attribute, not callable, or a signature
            that cannot take ``(row, outputs)``.
    """
    module_part, sep, attr = ref.strip().rpartition(":")
    if not sep or not module_part or not attr:
        raise TaskSpecError(
            f"metric '{ref}' is not module:function",
            hint="write --metric my_metrics:score or --metric path/to/metric.py:score",
        )
    module = (
        _load_file(ref, module_part) if _is_path(module_part) else _load_module(ref, module_part)
    )
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            names = sorted(
                n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))
            )
            raise TaskSpecError(
                f"metric '{ref}': {module_part} has no attribute '{attr}'",
                hint="its functions are: " + (", ".join(names) or "(none)"),
            )
        target = getattr(target, part)
    if not callable(target):
        raise TaskSpecError(
            f"metric '{ref}': '{attr}' is a {type(target).__name__}, not a function",
            hint="point --metric at a function metric(row, outputs)",
        )
    try:
        inspect.signature(target).bind(None, None)
    except TypeError:
        raise TaskSpecError(
            f"metric '{ref}': '{attr}' cannot be called as {attr}(row, outputs)",
            hint="a metric takes two arguments: the row (with gold outputs) and the outputs",
        ) from None
    except ValueError:
        pass  # builtins without a signature: trust them
    return UserMetric(ref, target)
