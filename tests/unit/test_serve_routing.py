"""Versions, the weighted split (A/B), stickiness, promote/rollback under load, watched dirs."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.unit._serve_fakes import ab_plan, make_service, student

from sgde.plan import plan_hash
from sgde.planfile import save_plan
from sgde.serve.app import create_app
from sgde.serve.errors import ApiError
from sgde.serve.registry import Registry, load_routing

A, B = ab_plan("A"), ab_plan("B")
HA, HB = plan_hash(A), plan_hash(B)
TOKEN = {"Authorization": "Bearer t0ken"}


def _registry(tmp_path: Path, weights: dict[str, int] | None = None) -> Registry:
    save_plan(A, tmp_path / "a.yaml")
    save_plan(B, tmp_path / "b.yaml")
    routing = tmp_path / "routing.yaml"
    if weights is not None:
        lines = "\n".join(f"      '{v}': {w}" for v, w in weights.items())
        routing.write_text(f"plans:\n  ab:\n    weights:\n{lines}\n")
    registry = Registry([tmp_path], routing_path=routing)
    registry.load()
    return registry


def test_ab_split_over_1000_requests_is_within_3_percent(tmp_path: Path) -> None:
    registry = _registry(tmp_path, {HA[7:15]: 70, HB: 30})
    service = make_service([], registry=registry)
    with TestClient(create_app(service)) as client:
        anonymous = Counter(
            client.post("/v1/plans/ab/run", json={"inputs": {"n": i}}).json()["version"]
            for i in range(1000)
        )
        keyed = Counter(
            client.post(
                "/v1/plans/ab/run", json={"inputs": {"n": i}}, headers={"X-Sgde-Caller": f"u{i}"}
            ).json()["version"]
            for i in range(1000)
        )
    for counts in (anonymous, keyed):
        assert sum(counts.values()) == 1000
        assert abs(counts[HA] / 1000 - 0.70) <= 0.03, counts
        assert abs(counts[HB] / 1000 - 0.30) <= 0.03, counts


def test_caller_key_is_sticky_and_a_version_can_be_pinned(tmp_path: Path) -> None:
    registry = _registry(tmp_path, {HA: 50, HB: 50})
    seen = {registry.route("ab", caller="alice").version for _ in range(50)}
    assert len(seen) == 1
    callers = {registry.route("ab", caller=f"c{i}").version for i in range(40)}
    assert callers == {HA, HB}
    assert registry.route("ab", version=HB[7:13]).version == HB
    with pytest.raises(ApiError) as info:
        registry.route("ab", version="zz")
    assert info.value.status == 404 and info.value.field == "version"


def test_without_weights_the_newest_file_serves_everything(tmp_path: Path) -> None:
    save_plan(A, tmp_path / "a.yaml")
    save_plan(B, tmp_path / "b.yaml")
    os.utime(tmp_path / "a.yaml", (time.time() + 5, time.time() + 5))
    registry = Registry([tmp_path])
    registry.load()
    assert registry.entry("ab").weights == {HA: 1.0}


def test_promote_set_weights_rollback_and_routing_file_persisted(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    service = make_service([], registry=registry, admin_token="t0ken")
    with TestClient(create_app(service)) as client:
        start = registry.entry("ab").weights
        r = client.post("/v1/admin/plans/ab/promote", json={"version": HA[7:17]}, headers=TOKEN)
        assert r.status_code == 200 and r.json()["weights"] == {HA: 1.0}
        assert load_routing(tmp_path / "routing.yaml") == {"ab": {HA: 1.0}}
        r = client.put(
            "/v1/admin/plans/ab/weights", json={"weights": {HA: 1, HB: 3}}, headers=TOKEN
        )
        assert r.json()["weights"] == {HA: 0.25, HB: 0.75}
        assert client.post("/v1/admin/plans/ab/rollback", headers=TOKEN).json()["weights"] == {
            HA: 1.0
        }
        assert client.post("/v1/admin/plans/ab/rollback", headers=TOKEN).json()["weights"] == start
        r = client.post("/v1/admin/plans/ab/rollback", headers=TOKEN)
        assert r.status_code == 409
        r = client.put("/v1/admin/plans/ab/weights", json={"weights": {HA: 0}}, headers=TOKEN)
        assert r.status_code == 422 and r.json()["error"]["field"] == "weights"


async def test_rollback_under_load_fails_no_request(tmp_path: Path) -> None:
    registry = _registry(tmp_path, {HA: 100})
    service = make_service(
        [], registry=registry, backend=student(delay_s=0.01), admin_token="t0ken",
        max_concurrency=8, queue_size=400,
    )  # fmt: skip
    app = create_app(service)
    await service.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            async def load(n: int) -> list[httpx.Response]:
                return [
                    await client.post("/v1/plans/ab/run", json={"inputs": {"n": n * 100 + i}})
                    for i in range(25)
                ]

            async def switch() -> list[int]:
                codes = []
                for action in ("promote", "rollback", "promote", "rollback"):
                    await asyncio.sleep(0.05)
                    body = {"json": {"version": HB}} if action == "promote" else {}
                    r = await client.post(f"/v1/admin/plans/ab/{action}", headers=TOKEN, **body)
                    codes.append(r.status_code)
                return codes

            *batches, switches = await asyncio.gather(*(load(n) for n in range(16)), switch())
    finally:
        await service.aclose()
    responses = [r for batch in batches for r in batch]
    assert switches == [200, 200, 200, 200]
    assert len(responses) == 400
    assert [r.status_code for r in responses if r.status_code != 200] == []
    versions = Counter(r.json()["version"] for r in responses)
    assert set(versions) == {HA, HB}, versions
    sent = sorted(json.loads(r.request.content)["inputs"]["n"] for r in responses)
    answered = sorted(r.json()["outputs"]["value"] for r in responses)
    assert sent == answered == sorted(n * 100 + i for n in range(16) for i in range(25))


async def test_watched_directory_reloads_new_and_removed_versions(tmp_path: Path) -> None:
    save_plan(A, tmp_path / "a.yaml")
    registry = Registry([tmp_path], routing_path=tmp_path / "routing.yaml")
    registry.load()
    service = make_service([], registry=registry, watch_interval_s=0.05)
    await service.start()
    try:
        assert registry.route("ab").version == HA
        save_plan(B, tmp_path / "b.yaml")
        os.utime(tmp_path / "b.yaml", (time.time() + 5, time.time() + 5))
        await _until(lambda: registry.route("ab").version == HB)
        (tmp_path / "broken.yaml").write_text("name: [oops\n")
        await asyncio.sleep(0.3)
        assert registry.route("ab").version == HB  # a bad file does not stop serving
        (tmp_path / "b.yaml").unlink()
        await _until(lambda: registry.route("ab").version == HA)
        outcome = await service.run("ab", {"n": 7})
        assert outcome.result is not None and outcome.result.outputs == {"value": 7}
    finally:
        await service.aclose()


async def _until(check: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")
