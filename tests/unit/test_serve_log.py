"""The production log: one row per request (failures too), labels by endpoint and CLI, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.unit._serve_fakes import duck_plan, make_service, student
from typer.testing import CliRunner

from sgde.errors import BackendError, DataError, UsageError
from sgde.plan import plan_hash
from sgde.serve.app import create_app
from sgde.serve.log import LogRecord, RequestLog

TOKEN = {"Authorization": "Bearer t0ken"}


def _client(tmp_path: Path, **kwargs: object) -> tuple[TestClient, RequestLog]:
    service = make_service([duck_plan()], admin_token="t0ken", **kwargs)  # type: ignore[arg-type]
    service.log = RequestLog(tmp_path / "log.sqlite")
    return TestClient(create_app(service)), service.log


def test_every_request_is_logged_with_version_and_can_be_labelled(tmp_path: Path) -> None:
    client, log = _client(tmp_path)
    with client:
        ids = [
            client.post(
                "/v1/plans/duck-eggs/run",
                json={"inputs": {"question": f"{n} eggs"}},
                headers={"X-Sgde-Caller": "bob"},
            ).json()["request_id"]
            for n in (3, 5)
        ]
        assert (
            client.post(f"/v1/log/{ids[0]}/label", json={"outputs": {"answer": 7}}).status_code
            == 401
        )
        r = client.post(f"/v1/log/{ids[0]}/label", json={"outputs": {"answer": 7}}, headers=TOKEN)
        assert r.status_code == 200 and r.json()["label"] == {"answer": 7}
        assert (
            client.post(
                "/v1/log/nope/label", json={"outputs": {"answer": 1}}, headers=TOKEN
            ).status_code
            == 404
        )
        assert client.get(f"/v1/log/{ids[1]}", headers=TOKEN).json()["outputs"] == {"answer": 10}
    rows = log.rows()
    assert [r.id for r in rows] == ids
    assert rows[0].version == plan_hash(duck_plan()) and rows[0].caller == "bob"
    assert rows[0].inputs == {"question": "3 eggs"} and rows[0].outputs == {"answer": 6}
    assert rows[0].usage["by_role"]["student"]["calls"] == 1
    assert [r.id for r in log.rows(labelled=True)] == [ids[0]]
    log.close()


def test_failed_requests_are_logged_with_status_and_error(tmp_path: Path) -> None:
    def down(request: object) -> dict[str, int]:
        raise BackendError("connection refused", provider="openai-compatible")

    client, log = _client(tmp_path, backend=student(down))
    with client:
        assert (
            client.post("/v1/plans/duck-eggs/run", json={"inputs": {"question": "x"}}).status_code
            == 502
        )
    (row,) = log.rows()
    assert (row.ok, row.status, row.outputs) == (False, 502, {})
    assert row.error is not None and "extract" in row.error
    log.close()


def test_log_cli_lists_labels_and_exports(tmp_path: Path) -> None:
    from sgde.cli.serve_cmd import log_app

    path = tmp_path / "log.sqlite"
    log = RequestLog(path)
    for i in range(3):
        log.record(
            LogRecord(
                id=f"r{i}",
                plan="duck-eggs",
                version="sha256:" + "ab" * 32,
                inputs={"question": f"q{i}"},
                outputs={"answer": i},
                ok=True,
                status=200,
                latency_s=0.1,
            )
        )
    log.close()
    runner = CliRunner()
    result = runner.invoke(log_app, ["label", str(path), "r1", "answer=42"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(log_app, ["list", str(path), "--labelled", "--json"])
    assert [json.loads(line)["id"] for line in result.output.splitlines()] == ["r1"]
    out = tmp_path / "rows.jsonl"
    result = runner.invoke(log_app, ["export", str(path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == {"id": "r1", "question": "q1", "answer": 42}
    bad = runner.invoke(log_app, ["label", str(path), "nope", "answer=1"])
    assert bad.exit_code != 0 and "nope" in str(bad.exception)


def test_log_refuses_bad_files_and_labels(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such request log"):
        RequestLog(tmp_path / "missing.sqlite", create=False)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(DataError, match="not an sgde request log"):
        RequestLog(junk)
    log = RequestLog(tmp_path / "ok.sqlite")
    with pytest.raises(UsageError, match="non-empty object"):
        log.label("x", {})
    log.close()
