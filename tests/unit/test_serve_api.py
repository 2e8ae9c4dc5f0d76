"""The HTTP API with fake students: answers, 4xx naming the field, 429, 502/504, admin auth."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.unit._serve_fakes import duck_plan, make_service, student

from sgde.errors import BackendError
from sgde.plan import plan_hash
from sgde.serve.app import create_app

Q = "Janet's ducks lay 16 eggs per day."


def _client(**kwargs: Any) -> TestClient:
    return TestClient(create_app(make_service([duck_plan()], **kwargs)))


def test_run_answers_outputs_version_usage_and_request_id() -> None:
    with _client() as client:
        r = client.post("/v1/plans/duck-eggs/run", json={"inputs": {"question": Q}})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["outputs"] == {"answer": 32}
        assert body["version"] == plan_hash(duck_plan()) == r.headers["x-sgde-version"]
        assert body["usage"]["by_role"]["student"]["calls"] == 1
        assert body["request_id"] == r.headers["x-request-id"]
        assert "trace" not in body
        traced = client.post(
            "/v1/plans/duck-eggs/run", json={"inputs": {"question": Q}, "trace": True}
        ).json()
        assert [n["node_id"] for n in traced["trace"]["nodes"]] == ["extract", "compute"]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"inputs": {}}, 422, "invalid_input", "inputs.question"),
        ({"inputs": {"question": Q, "qestion": 1}}, 422, "invalid_input", "inputs.qestion"),
        ({"inputs": {"question": [1]}}, 422, "invalid_input", "inputs.question"),
        ({"inputs": "text"}, 422, "invalid_request", "inputs"),
        ({}, 422, "invalid_request", "inputs"),
        ({"inputs": {"question": Q}, "seed": "x"}, 422, "invalid_request", "seed"),
        ({"inputs": {"question": Q}, "colour": 1}, 422, "invalid_request", "colour"),
        ({"inputs": {"question": Q}, "version": "ffffffff"}, 404, "unknown_version", "version"),
    ],
)
def test_bad_requests_are_4xx_naming_the_field(
    body: dict[str, Any], status: int, code: str, field: str
) -> None:
    with _client() as client:
        r = client.post("/v1/plans/duck-eggs/run", json=body)
        assert r.status_code == status, r.text
        error = r.json()["error"]
        assert (error["code"], error["field"]) == (code, field)
        assert field.split(".")[-1] in error["message"]


def test_malformed_json_unknown_plan_and_oversized_body() -> None:
    with _client(max_body_bytes=2048) as client:
        r = client.post(
            "/v1/plans/duck-eggs/run",
            content=b'{"inputs": {"question": ',
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
        r = client.post("/v1/plans/nope/run", json={"inputs": {"question": Q}})
        assert r.status_code == 404 and "duck-eggs" in r.json()["error"]["message"]
        r = client.post("/v1/plans/duck-eggs/run", json={"inputs": {"question": "x" * 5000}})
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

        def streamed() -> Iterator[bytes]:  # chunked: no Content-Length to refuse up front
            yield b'{"inputs": {"question": "'
            yield from (b"x" * 500 for _ in range(10))
            yield b'"}}'

        r = client.post(
            "/v1/plans/duck-eggs/run",
            content=streamed(),
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"
        # the server is still fine
        assert client.post("/v1/plans/duck-eggs/run", json={"inputs": {"question": Q}}).is_success


def test_backend_failure_is_502_naming_the_node_and_the_server_stays_up() -> None:
    calls = {"n": 0}

    def flaky(request: Any) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise BackendError("connection refused", provider="openai-compatible")
        return {"eggs": 3}

    with _client(backend=student(flaky)) as client:
        r = client.post("/v1/plans/duck-eggs/run", json={"inputs": {"question": Q}})
        assert r.status_code == 502, r.text
        error = r.json()["error"]
        assert (error["code"], error["node"]) == ("backend_error", "extract")
        assert "connection refused" in error["message"]
        ok = client.post("/v1/plans/duck-eggs/run", json={"inputs": {"question": Q}})
        assert ok.status_code == 200 and ok.json()["outputs"] == {"answer": 6}


def test_request_timeout_is_504_naming_the_running_node() -> None:
    with _client(backend=student(delay_s=2.0), request_timeout_s=0.2) as client:
        r = client.post("/v1/plans/duck-eggs/run", json={"inputs": {"question": Q}})
        assert r.status_code == 504, r.text
        error = r.json()["error"]
        assert (error["code"], error["node"]) == ("timeout", "extract")


def test_node_timeout_of_the_backend_is_504_backend_timeout() -> None:
    plan_text = duck_plan().model_dump(mode="json")
    plan_text["nodes"][0]["timeout_s"] = 0.1
    from sgde.plan import Plan

    plan = Plan.model_validate(plan_text)
    service = make_service([plan], backend=student(delay_s=1.0))
    with TestClient(create_app(service)) as client:
        r = client.post("/v1/plans/duck-eggs/run", json={"inputs": {"question": Q}})
        assert r.status_code == 504
        assert (r.json()["error"]["code"], r.json()["error"]["node"]) == (
            "backend_timeout",
            "extract",
        )


async def test_full_queue_answers_429_with_retry_after_and_every_request_once() -> None:
    service = make_service(
        [duck_plan()], backend=student(delay_s=0.3), max_concurrency=2, queue_size=2
    )
    app = create_app(service)
    await service.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            responses = await asyncio.gather(
                *(
                    client.post("/v1/plans/duck-eggs/run", json={"inputs": {"question": Q}})
                    for _ in range(10)
                )
            )
    finally:
        await service.aclose()
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) == 4 and codes.count(429) == 6, codes
    refused = next(r for r in responses if r.status_code == 429)
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.json()["error"]["code"] == "overloaded"
    ids = [r.json()["request_id"] for r in responses if r.status_code == 200]
    assert len(set(ids)) == 4


def test_batch_runs_rows_and_names_a_bad_row() -> None:
    with _client() as client:
        rows = [{"question": "1 egg"}, {"question": "21 eggs"}]
        r = client.post("/v1/plans/duck-eggs/batch", json={"inputs": rows})
        assert r.status_code == 200, r.text
        assert [x["outputs"]["answer"] for x in r.json()["results"]] == [2, 42]
        bad = client.post("/v1/plans/duck-eggs/batch", json={"inputs": [rows[0], {"q": 1}]})
        assert bad.status_code == 422
        assert bad.json()["error"]["field"] == "inputs[1].q"


def test_listing_schemas_health_readiness_metrics_and_openapi() -> None:
    with _client() as client:
        plans = client.get("/v1/plans").json()["plans"]
        version = plans[0]["versions"][0]
        assert version["input_schema"]["properties"] == {"question": {"type": "string"}}
        assert version["output_schema"]["required"] == ["answer"]
        assert version["weight"] == 1.0
        assert client.get("/healthz").json()["status"] == "ok"
        ready = client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["sandbox_warm"] is True
        client.post("/v1/plans/duck-eggs/run", json={"inputs": {"question": Q}})
        text = client.get("/metrics").text
        short = plan_hash(duck_plan())[7:19]
        assert f'sgde_requests_total{{plan="duck-eggs",status="200",version="{short}"}} 1.0' in text
        assert 'sgde_tokens_total{kind="input",plan="duck-eggs",role="student"' in text
        assert "sgde_request_duration_seconds_bucket" in text
        assert "/v1/plans/{name}/run" in client.get("/openapi.json").json()["paths"]


def test_admin_endpoints_need_the_bearer_token() -> None:
    with _client() as client:
        r = client.post("/v1/admin/reload")
        assert r.status_code == 403 and r.json()["error"]["code"] == "admin_disabled"
    with _client(admin_token="s3cret") as client:
        assert client.post("/v1/admin/reload").status_code == 401
        bad = client.post("/v1/admin/reload", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        good = client.post("/v1/admin/reload", headers={"Authorization": "Bearer s3cret"})
        assert good.status_code == 200, good.text
        assert json.dumps(good.json()["problems"]) == "[]"


def test_a_batch_never_fills_the_queue_with_its_own_rows() -> None:
    with _client(max_concurrency=1, queue_size=0) as client:
        rows = [{"question": f"{n} eggs"} for n in range(6)]
        r = client.post("/v1/plans/duck-eggs/batch", json={"inputs": rows})
        assert r.status_code == 200, r.text
        assert [x["status"] for x in r.json()["results"]] == [200] * 6
        assert r.json()["ok"] == 6
