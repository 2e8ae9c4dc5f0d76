"""GSM-Hard tooling: the vendored data, templates, alignment, number mentions and synthesis.

GSM-Hard is sgde's numeric benchmark, not the product: everything that knows about word
problems, their numbers and the PAL authors' ``solution()`` code lives here.

- :mod:`~sgde.evaluation.gsm.datasets`: the vendored GSM-Hard / GSM8K test sets
  (``data/``, with their sources and licences) and validating loaders.
- :mod:`~sgde.evaluation.gsm.templates`: a GSM-Hard row as a template (its numbers as typed
  parameters) and the vendored, precomputed templates file.
- :mod:`~sgde.evaluation.gsm.templatiser`: builds a template from a row and verifies it on the
  original row in the sandbox; ``_align`` and ``_mentions`` do the alignment of the GSM8K and
  GSM-Hard wordings and find the numbers in a text.
- :mod:`~sgde.evaluation.gsm.synth`: adversarial, constraint-checked rows from a template.

Names are imported from their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sgde.evaluation.gsm.datasets import (
        Gsm8kRow,
        GsmHardRow,
        data_file,
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

_LAZY: dict[str, str] = {
    **dict.fromkeys(
        ("Gsm8kRow", "GsmHardRow", "data_file", "load_gsm8k_test", "load_gsm_hard"),
        "sgde.evaluation.gsm.datasets",
    ),
    **dict.fromkeys(("synthesise", "synthesise_async"), "sgde.evaluation.gsm.synth"),
    **dict.fromkeys(
        ("Template", "TemplateFailure", "get_template", "load_templates"),
        "sgde.evaluation.gsm.templates",
    ),
    "templatise": "sgde.evaluation.gsm.templatiser",
}

__all__ = [
    "Gsm8kRow",
    "GsmHardRow",
    "Template",
    "TemplateFailure",
    "data_file",
    "get_template",
    "load_gsm8k_test",
    "load_gsm_hard",
    "load_templates",
    "synthesise",
    "synthesise_async",
    "templatise",
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
