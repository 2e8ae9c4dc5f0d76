"""Imports of optional dependencies, with an error that names the extra to install.

The evaluation and report stack (numpy, scipy, matplotlib) is the ``sgde[report]`` extra, so a
production install that only runs plans stays small and ``sgde --help`` starts fast. Modules
that need it import it through :func:`require` at the point of use, never at import time.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from sgde.errors import UsageError

__all__ = ["REPORT_EXTRA", "require"]

REPORT_EXTRA = "report"


def require(module: str, *, what: str, extra: str = REPORT_EXTRA) -> ModuleType:
    """Import ``module`` or raise a :class:`UsageError` naming the pip extra that provides it.

    Args:
        module: Dotted module name, e.g. ``"scipy.stats"``.
        what: What needs it, for the message (``"the McNemar test"``).
        extra: The sgde extra that installs it.

    Raises:
        UsageError: The module (or one it needs) is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = exc.name or module.split(".")[0]
        raise UsageError(
            f"{what} needs {missing}, which is not installed",
            hint=f'pip install "sgde[{extra}]"',
        ) from None
