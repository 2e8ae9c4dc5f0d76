"""The typed tasks of a bench: task families and datasets -> task spec, plan and rows.

A GSM-Hard template is synthesised by :mod:`sgde.evaluation.bench`; every other task item
(:class:`~sgde.evaluation.bench_config.TaskItem`) is resolved here:

- a **family** (:mod:`sgde.evaluation.tasks`) gives its own :class:`~sgde.task.TaskSpec`
  and, for multi-node workflows, its shipped plan; its training pool and test set are
  generated from the run seed (disjoint: no test instance is in the training pool);
- a **dataset** is a JSONL file (and optionally a held-out ``test`` file), paths relative
  to the configuration file; its task is inferred from the training rows
  (:func:`sgde.task.infer_task`, with the item's ``inputs``/``outputs``/``types``) and every
  row is checked against it, so a bad row is an error naming the file, line and field.

Rows given to methods hold only ``id`` and the task's fields; provenance stays in the files.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sgde.errors import SgdeError
from sgde.evaluation.tasks import get_family
from sgde.plan.model import Plan
from sgde.planfile import load_plan
from sgde.runtime.jsonl import read_jsonl
from sgde.task import FieldType, TaskSpec, infer_task

if TYPE_CHECKING:
    from sgde.evaluation.bench_config import BenchConfig, TaskItem

__all__ = ["ResolvedTask", "check_item", "generate_rows", "resolve_item", "task_rows"]

Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class ResolvedTask:
    """A typed bench task, ready to run.

    Attributes:
        id: The task's id in cells.
        spec: Its typed task.
        plan: The starting plan (the item's or the family's), or None.
        fingerprint: What its data depend on (family and seeds, or the files' hashes).
    """

    id: str
    spec: TaskSpec
    plan: Plan | None
    fingerprint: str


def _path(config: BenchConfig, rel: str) -> Path:
    p = Path(rel).expanduser()
    return p if p.is_absolute() else config.base_dir / p


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _dataset_rows(config: BenchConfig, item: TaskItem) -> tuple[Rows, Rows]:
    """The dataset's (training pool, test rows) as in the files, before typing."""
    assert item.dataset is not None
    rows = read_jsonl(_path(config, item.dataset))
    if item.test is not None:
        return rows, read_jsonl(_path(config, item.test))
    n_train = item.n_train or max(config.m)
    return rows[:n_train], rows[n_train : n_train + config.n_test]


def resolve_item(config: BenchConfig, item: TaskItem) -> ResolvedTask:
    """The item's task, starting plan and data fingerprint.

    Raises:
        SgdeError: an unknown family, an unreadable file, rows without a consistent task
            (:class:`~sgde.errors.TaskDataError` naming the file, line and field).
    """
    plan = load_plan(_path(config, item.plan)) if item.plan is not None else None
    if item.family is not None:
        family = get_family(item.family)
        shipped = family.plan_path()
        if plan is None and shipped is not None:
            plan = load_plan(shipped)
        return ResolvedTask(item.id, family.spec(), plan, f"family:{family.name}")
    assert item.dataset is not None
    path = _path(config, item.dataset)
    train, test = _dataset_rows(config, item)
    description = item.description or f"Predict the outputs of the rows of {path.name}."
    spec = infer_task(
        train,
        description=description,
        inputs=item.inputs,
        outputs=item.outputs,
        types=item.types or None,
        where=str(path),
    )
    spec = _widen_labels(spec, test, fixed=set(item.types))
    where_test = str(_path(config, item.test)) if item.test is not None else str(path)
    offset = 0 if item.test is not None else len(train)
    for i, row in enumerate(test, start=offset + 1):
        spec.check_row(row, f"{where_test}:{i}")
    if not test:
        raise SgdeError(
            f"{path}: no test rows (the first {len(train)} rows are the training pool)",
            hint="add rows, give a `test:` file, or lower `n_train`",
        )
    parts = [_digest(path)] + ([_digest(_path(config, item.test))] if item.test else [])
    return ResolvedTask(item.id, spec, plan, "dataset:" + ":".join(parts))


def _widen_labels(spec: TaskSpec, test: Rows, *, fixed: set[str]) -> TaskSpec:
    """An inferred label set grown by the test rows' labels: labels are part of the task,
    and a training pool of m rows rarely shows them all (declared ``types`` stay as given)."""
    outputs = dict(spec.outputs)
    for name, ftype in spec.outputs.items():
        if ftype.kind != "enum" or name in fixed:
            continue
        seen = list(ftype.labels or ())
        for row in test:
            value = row.get(name)
            if isinstance(value, str) and value.strip() and value not in seen:
                seen.append(value)
        outputs[name] = FieldType(kind="enum", labels=tuple(seen))
    return spec.model_copy(update={"outputs": outputs})


def check_item(config: BenchConfig, item: TaskItem) -> list[tuple[str, str]]:
    """The item's problems as ``(key, message)``, e.g. ``("dataset", "... file not found")``.

    Each part is checked on its own, so the key names the part at fault: ``plan`` (the
    starting plan does not load or lacks an output of the task), ``types`` (a type that does
    not parse), ``test`` (the held-out file), else ``family`` / ``dataset``.
    """
    steps: list[tuple[str, Callable[[], object]]] = []
    if item.plan is not None:
        plan_rel = item.plan
        steps.append(("plan", lambda: load_plan(_path(config, plan_rel))))
    for name, text in item.types.items():
        steps.append((f"types.{name}", functools.partial(FieldType.parse, text)))
    if item.test is not None:
        test_rel = item.test
        steps.append(("test", lambda: read_jsonl(_path(config, test_rel))))
    for key, step in steps:
        try:
            step()
        except SgdeError as exc:
            return [(key, exc.message)]
    try:
        resolved = resolve_item(config, item)
    except SgdeError as exc:
        key = "family" if item.family is not None else "dataset"
        if item.test is not None and str(_path(config, item.test)) in exc.message:
            key = "test"
        return [(key, exc.message)]
    if resolved.plan is not None:
        missing = [o for o in resolved.spec.outputs if o not in resolved.plan.outputs]
        if missing:
            return [("plan", f"the plan has no output {', '.join(missing)} of the task")]
    return []


def task_rows(spec: TaskSpec, rows: Sequence[Mapping[str, Any]], *, where: str) -> Rows:
    """Rows reduced to ``id`` and the task's fields, values coerced to their types."""
    out: Rows = []
    for i, row in enumerate(rows, start=1):
        checked = spec.check_row(row, f"{where}:{i}")
        fields = {k: checked[k] for k in (*spec.inputs, *spec.outputs) if k in checked}
        out.append({"id": str(row.get("id", f"{where}-{i}")), **fields})
    return out


def generate_rows(
    config: BenchConfig, item: TaskItem, seed: int, n_train: int
) -> tuple[Rows, Rows]:
    """The item's raw (training pool, test rows) for a run seed (families generate them)."""
    if item.family is None:
        train, test = _dataset_rows(config, item)
        return train[:n_train] if item.test is None else train, test
    family = get_family(item.family)
    test = family.generate(config.n_test, seed=seed, split="test")
    train = family.generate(
        n_train, seed=seed, split="train", exclude=[family.input_key(r) for r in test]
    )
    return train, test
