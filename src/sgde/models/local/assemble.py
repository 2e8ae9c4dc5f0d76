"""Locate, assemble and verify local GGUF files.

The chunk packages are never imported: their files are located through
:func:`importlib.metadata.distribution`. A model is assembled once into the models
directory by concatenating its chunks into a temporary file, checking size and sha256, and
renaming it into place. A small ``<file>.sha256`` sidecar records size and modification
time of the verified file, so later runs do not re-hash a gigabyte each time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from sgde.errors import ModelNotFoundError, UsageError
from sgde.models.local.registry import Chunk, LocalModel
from sgde.planfile.files import write_text_atomic

__all__ = [
    "ChunkLocator",
    "ModelStatus",
    "assembled_path",
    "ensure_assembled",
    "locate_chunk",
    "model_status",
    "sha256_file",
]

ChunkLocator = Callable[[Chunk], Path]
"""Finds one chunk's file on disk; raises :class:`ModelNotFoundError` when it is missing."""

_BLOCK = 4 * 1024 * 1024


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _missing(model: LocalModel, what: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"local model {model.full_name!r} is not installed: {what}",
        hint=f"install it with: {model.pip_lines()}",
    )


def locate_chunk(chunk: Chunk) -> Path:
    """Path of ``chunk`` inside its installed distribution, without importing it.

    Raises:
        ModelNotFoundError: The distribution or the file is missing.
        UsageError: An installed version differs from the pinned one.
    """
    try:
        dist = metadata.distribution(chunk.package)
    except metadata.PackageNotFoundError:
        raise ModelNotFoundError(f"package {chunk.requirement} is not installed") from None
    if dist.version != chunk.version:
        raise UsageError(
            f"package {chunk.package} {dist.version} is installed, but sgde pins "
            f"{chunk.requirement} (the model's sha256 is pinned to that release)",
            hint=f'pip install "{chunk.requirement}"',
        )
    path = Path(str(dist.locate_file(chunk.path)))
    if not path.is_file():
        raise ModelNotFoundError(
            f"package {chunk.requirement} is installed but lacks {chunk.path} (looked at {path})"
        )
    return path


def assembled_path(model: LocalModel, models_dir: Path) -> Path:
    """Where ``model`` is (or will be) assembled."""
    return models_dir / model.filename


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _sidecar_ok(model: LocalModel, target: Path) -> bool:
    """True when ``target`` exists and its sidecar vouches for its current size/mtime."""
    try:
        stat = target.stat()
        data = json.loads(_sidecar(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        isinstance(data, dict)
        and data.get("sha256") == model.sha256
        and data.get("size") == stat.st_size == model.size
        and data.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_sidecar(model: LocalModel, target: Path) -> None:
    stat = target.stat()
    record = {"sha256": model.sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    write_text_atomic(_sidecar(target), json.dumps(record) + "\n", what="model checksum file")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock (POSIX ``flock``); a no-op where unavailable."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with path.open("a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@dataclass(frozen=True)
class ModelStatus:
    """Installation state of one local model (for ``sgde models list``).

    Attributes:
        model: The registry entry.
        installed: Every chunk package is installed at the pinned version.
        assembled: The assembled file exists and was verified.
        path: Where the assembled file is (or will be).
        problem: Why it is not installed, if it is not.
    """

    model: LocalModel
    installed: bool
    assembled: bool
    path: Path
    problem: str | None = None


def model_status(
    model: LocalModel, models_dir: Path, *, locate: ChunkLocator = locate_chunk
) -> ModelStatus:
    """Installation state of ``model``; never raises for a missing package."""
    target = assembled_path(model, models_dir)
    problem: str | None = None
    for chunk in model.chunks:
        try:
            locate(chunk)
        except UsageError as exc:
            problem = exc.message
            break
    return ModelStatus(model, problem is None, _sidecar_ok(model, target), target, problem)


def ensure_assembled(
    model: LocalModel, models_dir: Path, *, locate: ChunkLocator = locate_chunk
) -> Path:
    """Assemble and verify ``model`` once; return the path of the GGUF file.

    A file already verified (sidecar matches) is returned at once. An existing file without
    a valid sidecar is hashed; if it matches it is kept, otherwise it is rebuilt.

    Raises:
        ModelNotFoundError: A chunk package is missing (the message has the pip line).
        UsageError: The assembled file's size or sha256 differs from the pinned value.
    """
    target = assembled_path(model, models_dir)
    if _sidecar_ok(model, target):
        return target
    try:
        chunks = [locate(chunk) for chunk in model.chunks]
    except ModelNotFoundError as exc:
        if target.is_file() and _verify_existing(model, target):
            return target
        raise _missing(model, exc.message) from None
    models_dir.mkdir(parents=True, exist_ok=True)
    with _file_lock(models_dir / f".{model.filename}.lock"):
        if _sidecar_ok(model, target):
            return target  # another process finished it while we waited
        if target.is_file() and _verify_existing(model, target):
            return target
        _concatenate_verified(model, chunks, target)
        _write_sidecar(model, target)
    return target


def _verify_existing(model: LocalModel, target: Path) -> bool:
    if target.stat().st_size == model.size and sha256_file(target) == model.sha256:
        _write_sidecar(model, target)
        return True
    return False


def _concatenate_verified(model: LocalModel, chunks: list[Path], target: Path) -> None:
    digest = hashlib.sha256()
    size = 0
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in chunks:
                with chunk.open("rb") as src:
                    while block := src.read(_BLOCK):
                        digest.update(block)
                        size += len(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if size != model.size or actual != model.sha256:
            raise UsageError(
                f"local model {model.full_name!r} failed verification after assembly: "
                f"expected {model.size} bytes with sha256 {model.sha256}, "
                f"got {size} bytes with sha256 {actual}; refusing to use it",
                hint="reinstall the pinned packages: pip install --force-reinstall "
                + " ".join(f'"{p}"' for p in model.packages),
            )
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the cache is shared like any cache file
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
