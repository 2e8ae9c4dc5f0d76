"""The public surface of sgde.runtime: a curated, complete ``__all__``."""

from __future__ import annotations

import importlib

import pytest

import sgde.runtime

MODULES = [
    "sgde.runtime.calls",
    "sgde.runtime.consensus",
    "sgde.runtime.executor",
    "sgde.runtime.inputs",
    "sgde.runtime.numbers",
    "sgde.runtime.parsing",
    "sgde.runtime.render",
    "sgde.runtime.trace",
]


def test_package_exports_resolve() -> None:
    for name in sgde.runtime.__all__:
        assert hasattr(sgde.runtime, name), name
    assert sorted(sgde.runtime.__all__) == sgde.runtime.__all__


@pytest.mark.parametrize("module", MODULES)
def test_module_all_is_complete(module: str) -> None:
    mod = importlib.import_module(module)
    public = {
        name
        for name, value in vars(mod).items()
        if not name.startswith("_")
        and getattr(value, "__module__", None) == module
        and (callable(value) or isinstance(value, type))
    }
    assert public <= set(mod.__all__), sorted(public - set(mod.__all__))
    for name in mod.__all__:
        assert hasattr(mod, name)


def test_contract_names_exist() -> None:
    from sgde.runtime.consensus import VoteResult, vote  # noqa: F401
    from sgde.runtime.executor import Executor, ExecutorSettings, RunResult  # noqa: F401
    from sgde.runtime.numbers import numbers_match, to_number, vote_key  # noqa: F401
    from sgde.runtime.parsing import parse_json_output  # noqa: F401
    from sgde.runtime.trace import (  # noqa: F401
        NodeTrace,
        RunTrace,
        SampleTrace,
        read_traces,
        write_traces,
    )

    settings = ExecutorSettings()
    assert (settings.max_concurrency, settings.llm_timeout_s, settings.code_timeout_s) == (
        4,
        300.0,
        10.0,
    )
