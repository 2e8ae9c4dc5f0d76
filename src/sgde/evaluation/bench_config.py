"""The ``sgde bench`` configuration: the :class:`BenchConfig` model and its YAML loader.

Every problem of a configuration file is reported at once, one line each, as
``file:line: field: what is wrong`` (``bench.yaml:12: compile.max_iter: unknown field;
did you mean 'max_iters'?``). Beyond the field types, :func:`check_config` checks the names
that would otherwise only fail once the models are loaded: methods, their options,
template ids, task families and dataset files.

Besides GSM-Hard ``templates``, a configuration lists ``tasks``: a task family by name
(``- date-add`` or ``- family: date-add``; rows generated from the seed) or a dataset
(``- dataset: rows.jsonl`` with an optional held-out ``test: test.jsonl``, else split by
count; paths relative to the configuration file; the task's types are inferred from the
rows unless ``types`` overrides them).
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from sgde.errors import UsageError
from sgde.evaluation.baselines import get_method, method_names
from sgde.evaluation.bench_items import check_item
from sgde.evaluation.gsm.templates import get_template
from sgde.evaluation.sgde_method import DEFAULT_TASK, SGDE_METHOD
from sgde.models import DEFAULT_STUDENT, DEFAULT_TEACHER, ModelSettings
from sgde.optimize.settings import CompileSettings
from sgde.planfile.files import read_user_text
from sgde.planfile.sourcemap import SourceMap, compose_yaml, describe_yaml_error

__all__ = [
    "BenchConfig",
    "TaskItem",
    "check_config",
    "load_bench_config",
]

_DOCS_HINT = "see docs/evaluation.md for the fields"


class TaskItem(BaseModel):
    """One typed task of a bench: a generated task family or a dataset (JSONL).

    Attributes:
        family: A task family name (``sgde synth --list``); rows generated from the seed.
        dataset: A JSONL file of labelled rows (relative to the configuration file).
        test: A JSONL file of held-out rows; without it the dataset is split by count: the
            first ``n_train`` rows are the training pool, the next ``n_test`` the test set.
        n_train: Training-pool size of a dataset without ``test`` (default: the largest m).
        name: The task's id in cells and tables (default: the family, or the file's stem).
        description: The task text (datasets; a family has its own).
        inputs: Input field names (datasets; default: every field but the outputs).
        outputs: Output field names (datasets; default: ``answer``/``label``/... or the
            last field).
        types: Field types overriding the inferred ones, e.g. ``{answer: date}``.
        plan: A starting plan (YAML, relative to the configuration file) for SGDe and the
            student-alone method; a family may ship its own.
    """

    model_config = ConfigDict(extra="forbid")

    family: str | None = None
    dataset: str | None = None
    test: str | None = None
    n_train: int | None = Field(default=None, ge=1)
    name: str | None = None
    description: str | None = None
    inputs: list[str] | None = None
    outputs: list[str] | None = None
    types: dict[str, str] = Field(default_factory=dict)
    plan: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _name_only(cls, value: Any) -> Any:
        return {"family": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_source(self) -> TaskItem:
        if (self.family is None) == (self.dataset is None):
            raise ValueError("give exactly one of 'family' (a task family) or 'dataset'")
        if self.family is not None:
            extra = [
                k
                for k in ("test", "n_train", "description", "inputs", "outputs")
                if getattr(self, k) is not None
            ]
            if extra or self.types:
                raise ValueError(
                    f"{', '.join(extra or ['types'])}: only for a dataset (a family defines "
                    "its own rows and types)"
                )
        if self.test is not None and self.n_train is not None:
            raise ValueError("give either 'test' (a held-out file) or 'n_train', not both")
        return self

    @property
    def id(self) -> str:
        """The task's id in cells: ``name``, else the family, else the dataset's stem."""
        if self.name:
            return self.name
        if self.family is not None:
            return self.family
        return Path(str(self.dataset)).stem


class BenchConfig(BaseModel):
    """A bench configuration (YAML). Unknown fields are rejected.

    Attributes:
        name: Name of the run (report title).
        description: Free text.
        student: Student model URI.
        teacher: Teacher model URI (SGDe and prompt optimisers).
        templates: GSM-Hard template ids (``sgde synth --list``).
        tasks: Typed tasks: task families and datasets (:class:`TaskItem`).
        m: Training-set sizes.
        methods: ``"sgde"`` and registry names (``direct``, ``cot``, ``pal``, ``ape``, ...).
        seeds: Seeds; each gives its own training and test data.
        n_test: Test items per (template, seed).
        budget: Token budget (teacher + student) of preparing one cell; None = unlimited.
        task: Task description given to the compiler's cold start.
        compile: Compiler settings (``max_iters``, ``repeats``, ...).
        method_options: Keyword options per method name (e.g. ``{"self-consistency": {"k": 5}}``).
        model_settings: Model settings (threads, cache, endpoint, prices).
        concurrency: Test items in flight at once.
        keep_traces: Which item traces the cell files keep.
    """

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1] = 1
    name: str = Field(min_length=1)
    description: str | None = None
    student: str = DEFAULT_STUDENT
    teacher: str = DEFAULT_TEACHER
    templates: list[str] = Field(default_factory=list)
    tasks: list[TaskItem] = Field(default_factory=list)
    m: list[int] = Field(default_factory=lambda: [3, 5], min_length=1)
    methods: list[str] = Field(min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    n_test: int = Field(default=20, ge=1, le=100_000)
    budget: int | None = Field(default=None, ge=1)
    task: str = DEFAULT_TASK
    compile: CompileSettings = Field(default_factory=CompileSettings)
    method_options: dict[str, dict[str, Any]] = Field(default_factory=dict)
    model_settings: ModelSettings = Field(default_factory=ModelSettings)
    concurrency: int = Field(default=1, ge=1, le=256)
    keep_traces: Literal["all", "failures", "none"] = "failures"
    _base_dir: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _some_items(self) -> BenchConfig:
        if not self.templates and not self.tasks:
            raise ValueError("give at least one GSM-Hard template or task (family / dataset)")
        ids = [*self.templates, *(t.id for t in self.tasks)]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"task ids must be distinct; repeated: {', '.join(dup)}")
        return self

    @property
    def base_dir(self) -> Path:
        """The directory relative paths are read from (the configuration file's)."""
        return self._base_dir if self._base_dir is not None else Path.cwd()

    def with_base_dir(self, base_dir: Path) -> BenchConfig:
        """This configuration, reading relative paths from ``base_dir``."""
        self._base_dir = base_dir
        return self

    @property
    def item_ids(self) -> list[str]:
        """Every task id: the templates, then the typed tasks."""
        return [*self.templates, *(t.id for t in self.tasks)]

    def task_item(self, item_id: str) -> TaskItem | None:
        """The typed task called ``item_id`` (None for a GSM-Hard template)."""
        return next((t for t in self.tasks if t.id == item_id), None)

    @field_validator("m")
    @classmethod
    def _check_m(cls, value: list[int]) -> list[int]:
        if any(m < 1 for m in value):
            raise ValueError("every m must be >= 1")
        if len(set(value)) != len(value):
            raise ValueError("m values must be distinct")
        return value

    @field_validator("templates", "methods")
    @classmethod
    def _distinct_names(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("entries must be distinct")
        if any(not v.strip() for v in value):
            raise ValueError("entries must be non-empty")
        return value

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, value: list[int]) -> list[int]:
        if len(set(value)) != len(value):
            raise ValueError("seeds must be distinct")
        return value

    def public_dict(self) -> dict[str, Any]:
        """The configuration as JSON, without secrets (for ``results.json``)."""
        data = self.model_dump(mode="json")
        data["model_settings"].pop("api_key", None)
        return data


_FieldPath = tuple[str | int, ...]


class _Problems:
    """Collects ``file:line: field: message`` lines."""

    def __init__(self, source: str, source_map: SourceMap | None, *, what: str = "") -> None:
        self.source = source
        self.source_map = source_map
        self.what = what or (f"bench config {source}" if source else "bench config")
        self.lines: list[tuple[int, str]] = []

    def add(self, path: _FieldPath, message: str, *, line_path: _FieldPath | None = None) -> None:
        line = None
        if self.source_map is not None:
            line = self.source_map.line(*(path if line_path is None else line_path))
        where = self.source
        if where and line is not None:
            where += f":{line}"
        field = ".".join(str(p) for p in path) or "(top level)"
        text = f"{where}: {field}: {message}" if where else f"{field}: {message}"
        self.lines.append((line or 0, text))

    def error(self, *, hint: str) -> UsageError:
        count = len(self.lines)
        text = "\n  ".join(line for _, line in sorted(self.lines, key=lambda item: item[0]))
        return UsageError(
            f"{self.what} is invalid ({count} problem{'' if count == 1 else 's'}):\n  {text}",
            hint=hint,
        )

    def raise_if_any(self, *, hint: str) -> None:
        if self.lines:
            raise self.error(hint=hint)


def _model_at(path: _FieldPath) -> type[BaseModel] | None:
    """The pydantic model of the mapping at ``path`` (None when it is not a model)."""
    model: type[BaseModel] = BenchConfig
    for part in path:
        info = model.model_fields.get(str(part))
        annotation = info.annotation if info is not None else None
        candidates = typing.get_args(annotation) or (annotation,)
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _add_validation_problems(problems: _Problems, exc: ValidationError) -> None:
    for err in exc.errors(include_url=False):
        path: _FieldPath = tuple(err["loc"])
        kind = err["type"]
        message = err["msg"][:1].lower() + err["msg"][1:]
        line_path = None
        if kind == "extra_forbidden":
            message = "unknown field"
            model = _model_at(path[:-1])
            if model is not None:
                allowed = list(model.model_fields)
                close = difflib.get_close_matches(str(path[-1]), allowed, n=1)
                if close:
                    message += f"; did you mean {close[0]!r}?"
                else:
                    message += " (allowed: " + ", ".join(allowed) + ")"
        elif kind == "missing":
            message = "missing required field"
            line_path = path[:-1]
        elif not isinstance(err.get("input"), (dict, list)):
            message += f" (got {_short(err.get('input'))})"
        problems.add(path, message, line_path=line_path)


def check_config(
    config: BenchConfig,
    *,
    known_methods: Sequence[str] | None = None,
    find_template: Callable[[str], Any] | None = None,
    source: str = "",
    source_map: SourceMap | None = None,
    what: str = "",
) -> None:
    """Check the names in a configuration: methods, their options and template ids.

    Args:
        config: The configuration.
        known_methods: Method names to accept besides ``"sgde"`` (default: the registry;
            the options of registry methods are then tried on their constructors).
        find_template: Template id -> template, raising :class:`UsageError` for an unknown
            id (default: :func:`sgde.evaluation.gsm.templates.get_template`).
        source: The file name, for messages.
        source_map: Where each field sits in the file, for line numbers.
        what: What is checked, for the message (default ``"bench config <source>"``).

    Raises:
        UsageError: listing every bad entry as ``file:line: field: message``.
    """
    problems = _Problems(source, source_map, what=what)
    registry = known_methods is None
    known = {SGDE_METHOD, *(method_names() if known_methods is None else known_methods)}
    for i, name in enumerate(config.methods):
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.5)
            suggestion = f"; did you mean {close[0]!r}?" if close else ""
            problems.add(("methods", i), f"unknown method {name!r}{suggestion}")
    for name, options in config.method_options.items():
        if name not in config.methods:
            problems.add(("method_options", name), "not one of the configured methods")
        elif registry and name != SGDE_METHOD and name in known:
            try:
                get_method(name, **options)
            except UsageError as exc:
                problems.add(("method_options", name), exc.message)
    hints = ["known methods: " + ", ".join(sorted(known))] if problems.lines else []
    lookup = find_template or get_template
    _check_tasks(config, problems, hints)
    bad_templates = False
    for i, template_id in enumerate(config.templates):
        try:
            lookup(template_id)
        except UsageError as exc:
            problems.add(("templates", i), exc.message)
            bad_templates = True
    if bad_templates:
        hints.append("`sgde synth --list` lists the template ids")
    problems.raise_if_any(hint="; ".join(hints))


def _check_tasks(config: BenchConfig, problems: _Problems, hints: list[str]) -> None:
    """Families exist; dataset, test and plan files read and hold a consistent task."""
    bad_family = False
    for i, item in enumerate(config.tasks):
        for key, message in check_item(config, item):
            problems.add(("tasks", i, key), message)
            bad_family = bad_family or key == "family"
    if bad_family:
        hints.append("`sgde synth --list` lists the task families")


def load_bench_config(
    path: str | Path,
    *,
    known_methods: Sequence[str] | None = None,
    find_template: Callable[[str], Any] | None = None,
) -> BenchConfig:
    """Read and validate a bench configuration file.

    Args:
        path: The YAML file.
        known_methods: Method names to accept besides ``"sgde"`` (default: the registry).
        find_template: Template lookup (default: the vendored GSM-Hard templates).

    Raises:
        UsageError: the file is missing, not YAML, or invalid — one line per problem,
            ``file:line: field: message`` (e.g. ``compile.max_iters``).
    """
    p = Path(path)
    text = read_user_text(p, what="bench config")  # regular files only, size-capped
    try:
        composed = compose_yaml(text)
    except yaml.YAMLError as exc:
        message, line = describe_yaml_error(exc)
        where = f"{p}:{line}" if line is not None else str(p)
        raise UsageError(
            f"bench config {p} is not valid YAML:\n  {where}: {message}",
            hint="check the indentation and brackets near that line",
        ) from None
    data, source_map = composed if composed is not None else (None, None)
    if not isinstance(data, dict):
        raise UsageError(
            f"bench config {p} must be a mapping of fields at the top level",
            hint=_DOCS_HINT + " (name, templates, methods, ...)",
        )
    problems = _Problems(str(p), source_map)
    for dup in source_map.duplicates if source_map is not None else ():
        problems.add(dup.path, f"duplicate key (first at line {dup.first_line})")
    try:
        config = BenchConfig.model_validate(data)
    except ValidationError as exc:
        _add_validation_problems(problems, exc)
        raise problems.error(hint=_DOCS_HINT) from None
    problems.raise_if_any(hint=_DOCS_HINT)
    config.with_base_dir(p.parent)
    check_config(
        config,
        known_methods=known_methods,
        find_template=find_template,
        source=str(p),
        source_map=source_map,
    )
    return config
