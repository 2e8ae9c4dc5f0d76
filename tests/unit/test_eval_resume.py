"""Per-row results on disk, --resume, and "wrong answer" versus "could not run"."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import openai
import pytest
from _bench_fakes import SGDE_PLAN
from typer.testing import CliRunner

from sgde.cli import eval_cmds, run_cmd
from sgde.cli.app import app
from sgde.cli.common import EXIT_INCOMPLETE, EXIT_USAGE, run_cli
from sgde.errors import BackendError, BudgetExceeded, DataError, SandboxError, UsageError
from sgde.evaluation.evaluate import ItemResult, evaluate_plan_async, summarise
from sgde.evaluation.outcomes import exception_error_kind, run_error_kind, trace_error_kind
from sgde.evaluation.results_log import ResultsLog, default_results_path, row_hash
from sgde.models import ModelHub, ModelSettings, OpenAIBackend, RetryPolicy
from sgde.plan import plan_hash
from sgde.planfile import save_plan
from sgde.runtime.trace import NodeTrace, RunTrace, SampleTrace, error_info, read_traces
from sgde.testing import FunctionBackend

try:  # the transport module the installed SDKs use
    import httpx2 as httpx
except ImportError:  # pragma: no cover - older SDKs use httpx
    import httpx  # type: ignore[no-redef]

URL = "http://127.0.0.1:8999/v1"
HEADER = {"command": "eval", "plan": "p", "plan_hash": "sha256:a", "seed": 0, "models": {}}
ROWS = [{"question": f"What is {10 + i} plus 5?", "answer": 15 + i} for i in range(12)]


# -- outcomes --------------------------------------------------------------------------------
def _trace(*nodes: NodeTrace) -> RunTrace:
    return RunTrace(run_id="r", plan_name="p", ok=False, nodes=list(nodes))


def test_error_kinds_separate_outages_from_wrong_answers() -> None:
    down = error_info(BackendError("refused", provider="openai-compatible", retryable=True))
    parse = {"type": "OutputParseError", "message": "bad json"}
    crashed = error_info(SandboxError("worker died", rule="worker-crashed"))
    policy = error_info(SandboxError("no", rule="policy:import-not-allowed"))
    assert run_error_kind(_trace(NodeTrace("a", "llm", "error", error=down))) == "backend"
    assert run_error_kind(_trace(NodeTrace("a", "llm", "error", error=parse))) is None
    assert run_error_kind(_trace(NodeTrace("c", "code", "error", error=crashed))) == "sandbox"
    assert run_error_kind(_trace(NodeTrace("c", "code", "error", error=policy))) is None
    vote = NodeTrace(
        "v",
        "consensus",
        "error",
        error={"type": "ExecutionError", "message": "no valid sample"},
        samples=[SampleTrace(0, error=parse), SampleTrace(1, error=down)],
    )
    assert run_error_kind(_trace(vote)) == "backend"
    assert trace_error_kind(_trace(vote).to_dict()) == "backend"
    ok = RunTrace(run_id="r", plan_name="p", ok=True)
    assert run_error_kind(ok) is None and trace_error_kind(ok.to_dict()) is None
    assert exception_error_kind(BudgetExceeded("out")) == "budget"
    assert exception_error_kind(SandboxError("x", rule="timeout")) is None


def test_accuracy_is_over_the_rows_that_ran() -> None:
    items = [ItemResult(str(i), correct=i < 3) for i in range(4)]
    items += [ItemResult(f"e{i}", False, ok=False, error_kind="backend") for i in range(4)]
    result = summarise(items, name="p")
    assert (result.n, result.n_ran, result.n_errors, result.n_correct) == (8, 4, 4, 3)
    assert result.accuracy == 0.75 and result.error_kinds == {"backend": 4}
    doc = result.to_dict()
    assert doc["n_errors"] == 4 and doc["n_ran"] == 4 and doc["error_kinds"] == {"backend": 4}
    again = type(result).from_dict(doc)
    assert again.accuracy == 0.75 and again.items[5].error_kind == "backend"


async def test_rows_whose_backend_or_budget_fails_could_not_run() -> None:
    def reply(request: Any) -> dict[str, Any]:
        text = request.messages[-1].content
        a = int(re.findall(r"\d+", text)[0])
        if a % 4 == 1:
            raise BackendError("connection refused", provider="openai-compatible")
        if a % 4 == 3:
            raise BudgetExceeded("budget spent")
        return {"answer": a + 5 if a % 4 == 0 else 0}

    result = await evaluate_plan_async(
        SGDE_PLAN, ROWS[:8], {"student": FunctionBackend(reply)}, sandbox=None
    )
    kinds = [i.error_kind for i in result.items]
    assert kinds == [None, "budget", None, "backend"] * 2
    # rows 2 and 6 right, 0 and 4 wrong: 2/4 over the rows that ran, 4 errors beside it
    assert (result.n_ran, result.n_correct, result.accuracy) == (4, 2, 0.5)
    assert result.error_kinds == {"backend": 2, "budget": 2}


# -- the results file ----------------------------------------------------------------------------
def _log(path: Path, *, resume: bool, **header: Any) -> ResultsLog:
    return ResultsLog(path, {**HEADER, **header}, resume=resume)


def test_rows_are_kept_and_a_torn_last_line_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with _log(path, resume=False) as log:
        for i in range(3):
            log.append(i, ROWS[i], {"id": str(i), "correct": True}, ran=True)
        log.append(3, ROWS[3], {"id": "3", "correct": False}, ran=False)
    whole = path.read_bytes()
    with path.open("ab") as fh:  # a kill in the middle of the next write
        fh.write(b'{"index": 4, "row_hash": "ab", "ran": tr')
    with _log(path, resume=True) as log:
        assert log.dropped_torn_line
        assert sorted(log.finished(ROWS)) == [0, 1, 2]  # row 3 could not run: run it again
        assert path.read_bytes() == whole  # the torn bytes are gone before appending
        log.append(3, ROWS[3], {"id": "3", "correct": True}, ran=True)
    lines = path.read_text().splitlines()
    assert all(json.loads(line) for line in lines) and len(lines) == 6
    with _log(path, resume=True) as log:
        assert sorted(log.finished(ROWS)) == [0, 1, 2, 3]
        assert log.finished(ROWS[:2]).keys() == {0, 1}  # a smaller --limit


def test_without_resume_the_file_starts_over(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with _log(path, resume=False) as log:
        log.append(0, ROWS[0], {"id": "0"}, ran=True)
    with _log(path, resume=False) as log:
        assert log.finished(ROWS) == {}
    assert len(path.read_text().splitlines()) == 1


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("plan_hash", "sha256:b", "another plan hash (sha256:a, this run: sha256:b)"),
        ("seed", 7, "another seed"),
        ("models", {"student": "x"}, "another models (none, this run: student=x)"),
        ("command", "run", "another command"),
    ],
)
def test_resume_refuses_another_run(tmp_path: Path, field: str, value: Any, words: str) -> None:
    path = tmp_path / "r.jsonl"
    _log(path, resume=False).close()
    with pytest.raises(UsageError) as info:
        _log(path, resume=True, **{field: value})
    assert words in info.value.message and "without --resume" in (info.value.hint or "")


def test_resume_refuses_a_changed_dataset_and_an_edited_file(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with _log(path, resume=False) as log:
        log.append(1, ROWS[1], {"id": "1"}, ran=True)
    changed = [dict(r) for r in ROWS]
    changed[1]["answer"] = 99
    with _log(path, resume=True) as log, pytest.raises(UsageError, match="dataset row 2 differs"):
        log.finished(changed)
    path.write_text(path.read_text().replace('"ran"', "garbage", 1) + "{}\n")
    with pytest.raises(DataError) as info:
        _log(path, resume=True)
    assert info.value.line == 2
    path.write_text('{"not": "results"}\n')
    with pytest.raises(UsageError, match="not a results file"):
        _log(path, resume=True)


def test_row_hash_and_default_path() -> None:
    assert row_hash({"a": 1, "b": 2}) == row_hash({"b": 2, "a": 1}) != row_hash({"a": 2, "b": 2})
    assert default_results_path(Path("out/t.jsonl")) == Path("out/t.results.jsonl")
    assert default_results_path(None) is None


# -- the CLI against an endpoint that dies -------------------------------------------------------
class Server:
    """An OpenAI-compatible mock endpoint that answers the sum, and can be killed."""

    def __init__(self, die_after: int | None = None) -> None:
        self.die_after = die_after
        self.requests = 0

    def __call__(self, request: Any) -> Any:
        self.requests += 1
        if self.die_after is not None and self.requests > self.die_after:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        body = json.loads(request.content)
        a, b = (int(x) for x in re.findall(r"What is (\d+) plus (\d+)", str(body))[0])
        answer = a + b if a % 3 else a + b + 1  # every third row wrong
        message = {"role": "assistant", "content": json.dumps({"answer": answer})}
        return httpx.Response(
            200,
            json={
                "id": "c",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14},
            },
        )


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """`sgde eval`/`run` whose student is an HTTP backend on a mock server, breaker included."""
    state: dict[str, Any] = {"server": Server()}

    def hub(settings: ModelSettings) -> ModelHub:
        def resolve(name: str, s: ModelSettings) -> OpenAIBackend:
            client = openai.AsyncOpenAI(
                api_key="k",
                base_url=URL,
                max_retries=0,
                http_client=httpx.AsyncClient(transport=httpx.MockTransport(state["server"])),
            )
            return OpenAIBackend(
                name,
                provider="openai-compatible",
                model="m",
                client=client,
                structured_output="json_object_schema",
                policy=RetryPolicy(max_retries=4, backoff_s=0.001, max_backoff_s=0.01),
                breaker=made.breakers.for_endpoint(URL),
            )

        made = ModelHub(settings, resolver=resolve)
        return made

    monkeypatch.setattr(eval_cmds, "ModelHub", hub)
    monkeypatch.setattr(run_cmd, "_open_hub", hub)
    plan = tmp_path / "plan.yaml"
    save_plan(SGDE_PLAN, plan)
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    state.update(plan=plan, data=data, tmp=tmp_path)
    return state


def _eval(served: dict[str, Any], *extra: str) -> Any:
    args = ["eval", str(served["plan"]), "--dataset", str(served["data"])]
    args += ["--model", "student=openai-compatible:m", *extra]
    return CliRunner().invoke(app, args)


def _stable(doc: dict[str, Any]) -> dict[str, Any]:
    """A result without timings (the rest is deterministic)."""
    out = {k: v for k, v in doc.items() if not k.startswith("latency") and k != "extra"}
    out["items"] = [{k: v for k, v in i.items() if k != "latency_s"} for i in doc["items"]]
    return out


def test_eval_outage_exits_3_keeps_finished_rows_and_resume_completes(
    served: dict[str, Any],
) -> None:
    tmp: Path = served["tmp"]
    whole = _eval(served, "--json")
    assert whole.exit_code == 0, whole.output
    uninterrupted = json.loads(whole.output)
    assert uninterrupted["n_errors"] == 0 and uninterrupted["n_correct"] == 8

    served["server"] = Server(die_after=5)
    results = tmp / "results.jsonl"
    cut = _eval(served, "--results", str(results), "--trace", str(tmp / "t.jsonl"), "--json")
    assert cut.exit_code == EXIT_INCOMPLETE, cut.output
    doc = json.loads(cut.stdout)
    assert doc["n_ran"] == 5 and doc["n_errors"] == 7 and doc["error_kinds"] == {"backend": 7}
    assert doc["accuracy"] == pytest.approx(4 / 5)  # over the rows that ran, not 4/12
    assert "7 of 12 rows could not run (backend 7)" in cut.stderr
    assert "--resume" in cut.stderr
    # the breaker opened on the dead endpoint: 5 attempts, then every row failed at once
    assert served["server"].requests == 5 + 5
    errors = [i["error"] for i in doc["items"] if i["error_kind"]]
    assert all(URL in e and "not answering" in e for e in errors)
    lines = [json.loads(x) for x in results.read_text().splitlines()]
    assert lines[0]["plan_hash"] == plan_hash(SGDE_PLAN)
    assert [r["index"] for r in lines[1:] if r["ran"]] == [0, 1, 2, 3, 4]

    served["server"] = Server()
    resumed = _eval(
        served, "--results", str(results), "--trace", str(tmp / "t.jsonl"), "--resume", "--json"
    )
    assert resumed.exit_code == 0, resumed.output
    assert served["server"].requests == 7  # only the rows that had not run
    final = json.loads(resumed.stdout)
    assert _stable(final) == _stable(uninterrupted)
    assert final["extra"]["resumed"] == 5
    assert len(read_traces(tmp / "t.jsonl")) == 12  # the trace covers every row


def test_eval_table_counts_errors_beside_the_accuracy(served: dict[str, Any]) -> None:
    served["server"] = Server(die_after=3)
    cut = _eval(served, "--trace", str(served["tmp"] / "t.jsonl"))
    assert cut.exit_code == EXIT_INCOMPLETE
    assert "Could not run (9, not counted in the accuracy)" in cut.stdout
    assert "backend: rows 3, 4, 5, 6, 7, 8, 9, 10, 11" in cut.stdout
    assert cut.stdout.count("is not answering") == 1  # one message, not one per row
    assert "Failures (1)" in cut.stdout and "2/3" in cut.stdout  # correct over rows that ran
    assert (served["tmp"] / "t.results.jsonl").exists()  # default: next to the trace


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = run_cli(app, args)
    out, err = capsys.readouterr()
    return code, out + err


def test_resume_misuse_is_a_usage_error(
    served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["eval", str(served["plan"]), "--dataset", str(served["data"])]
    base += ["--model", "student=openai-compatible:m"]
    code, text = _cli([*base, "--resume"], capsys)
    assert code == EXIT_USAGE and "--resume needs the results file" in text
    results = ["--results", str(served["tmp"] / "r.jsonl")]
    assert _cli([*base, *results], capsys)[0] == 0
    code, text = _cli([*base, *results, "--resume", "--seed", "3"], capsys)
    assert code == EXIT_USAGE and "another seed" in text
    code, text = _cli([*base, "--results", str(served["data"])], capsys)
    assert code == EXIT_USAGE and "--results" in text  # never overwrite the dataset
    code, text = _cli(["run", str(served["plan"]), "--input", "question=x", "--resume"], capsys)
    assert code == EXIT_USAGE and "--dataset" in text


def test_run_dataset_outage_and_resume(served: dict[str, Any]) -> None:
    tmp: Path = served["tmp"]
    base = ["run", str(served["plan"]), "--dataset", str(served["data"])]
    base += ["--model", "student=openai-compatible:m", "--concurrency", "1"]
    whole = CliRunner().invoke(app, base)
    assert whole.exit_code == 0, whole.output
    served["server"] = Server(die_after=4)
    results = ["--results", str(tmp / "run.jsonl")]
    cut = CliRunner().invoke(app, [*base, *results])
    assert cut.exit_code == EXIT_INCOMPLETE, cut.output
    records = [json.loads(x) for x in cut.stdout.splitlines()]
    assert [r.get("error_kind") for r in records] == [None] * 4 + ["backend"] * 8
    served["server"] = Server()
    resumed = CliRunner().invoke(app, [*base, *results, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert served["server"].requests == 8
    assert resumed.stdout == whole.stdout  # every row, in order, as an uninterrupted run


# -- sgde bench: cells with rows that could not run are errors, not accuracies -------------------
async def test_bench_marks_outage_cells_as_errors_and_retries_them(tmp_path: Path) -> None:
    import dataclasses

    from _bench_fakes import fake_config, fake_deps, fake_resolver, mapping_rows

    from sgde.evaluation.bench import run_bench_async

    state = {"down": True}

    def resolver(name: str, settings: ModelSettings) -> FunctionBackend:
        real = fake_resolver(name, settings)

        def reply(request: Any) -> Any:
            if state["down"]:
                raise BackendError("connection refused", provider="openai-compatible")
            return real._fn(request)

        return FunctionBackend(reply, name=name)

    deps = dataclasses.replace(
        fake_deps(), make_hub=lambda settings: ModelHub(settings, resolver=resolver)
    )
    config = fake_config(m=[3], methods=["direct"])
    outcome = await run_bench_async(config, tmp_path, deps=deps)
    cell = outcome.results["cells"][0]
    assert cell["status"] == "error"
    assert "8 of 8 test items could not run (backend 8)" in cell["error"]
    assert "--retry-errors" in cell["error"]
    row = mapping_rows(outcome.results, "direct")[0]
    assert row["errors"] == 1 and row["accuracy"] is None  # not folded in as 0 %

    again = await run_bench_async(config, tmp_path, deps=deps)
    assert again.ran == 0  # kept without --retry-errors
    state["down"] = False
    retried = await run_bench_async(config, tmp_path, deps=deps, retry_errors=True)
    assert retried.ran == 1 and retried.results["cells"][0]["status"] == "ok"
    assert mapping_rows(retried.results, "direct")[0]["accuracy"] is not None


def test_single_run_against_a_dead_endpoint_exits_3(
    served: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    served["server"] = Server(die_after=0)
    args = ["run", str(served["plan"]), "--input", "question=What is 10 plus 5?"]
    code, text = _cli([*args, "--model", "student=openai-compatible:m"], capsys)
    assert code == EXIT_INCOMPLETE and "is not answering" in text
    served["server"] = Server()
    code, text = _cli([*args, "--model", "student=openai-compatible:m"], capsys)
    assert code == 0 and '"answer": 15' in text
