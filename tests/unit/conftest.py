"""Unit tests run with fakes only: resolving a real model provider raises."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _block_real_models(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    monkeypatch.setenv("SGDE_BLOCK_REAL_MODELS", "1")
    # Keep caches of unit tests out of the user's cache directory.
    monkeypatch.setenv("SGDE_CACHE_DIR", str(tmp_path_factory.mktemp("sgde-cache")))
