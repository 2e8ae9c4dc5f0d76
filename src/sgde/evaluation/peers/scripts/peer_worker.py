"""sgde's peer worker: runs a peer optimiser from its own package, unmodified.

Run with a peer venv's interpreter (it cannot import sgde). Protocol (JSON lines): the first
stdin line is the job (``{"op": "compile", "peer": ..., "train": [...], ...}``); the worker
answers one ``{"op": "compiled"}`` or ``{"op": "failed"}`` line on stdout, prefixed with
``@@sgde-peer@@ ``; then each ``{"op": "predict", "row": {...}}`` gets one
``{"op": "prediction", "outputs": {...}, "error": ...}``; ``{"op": "close"}`` ends it. Other
stdout lines are the peers' own output. Calls go to the endpoints of the job (sgde's metering
proxies in front of llama.cpp servers), which count tokens and enforce the budget.

The metric the peers optimise: for a numeric output, the last number in the program's answer
must equal the gold number within 1e-6 absolute (commas removed); otherwise the trimmed,
case-folded strings must be equal.
"""

from __future__ import annotations

import json
import math
import random
import re
import sys
import time
import traceback
from typing import Any

MARKER = "@@sgde-peer@@ "
_STDOUT = sys.stdout
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def send(message: dict[str, Any]) -> None:
    _STDOUT.write(MARKER + json.dumps(message, default=str) + "\n")
    _STDOUT.flush()


def last_number(text: Any) -> float | None:
    found = _NUMBER.findall(str(text or ""))
    for token in reversed(found):
        try:
            value = float(token.replace(",", ""))
        except ValueError:
            continue
        if math.isfinite(value):
            return value
    return None


def correct(predicted: Any, gold: Any, numeric: bool) -> bool:
    if numeric:
        want = last_number(gold)
        got = last_number(predicted)
        return want is not None and got is not None and abs(got - want) <= 1e-6
    return str(predicted or "").strip().casefold() == str(gold or "").strip().casefold()


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:800]}"


# The metering proxy's refusal once the budget is spent (sgde.evaluation.peers.proxy's
# BUDGET_MESSAGE: this script runs in the peer's venv, without sgde; a test keeps them equal).
BUDGET_MESSAGE = "sgde peer budget exhausted"


def budget_spent(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it wraps: its cause, its context, the last attempt of a
    tenacity ``RetryError``) is the proxy's refusal of a call after the budget was spent."""
    stack: list[BaseException] = [exc]
    seen: set[int] = set()
    while stack:
        err = stack.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        if BUDGET_MESSAGE in str(err) or BUDGET_MESSAGE in repr(getattr(err, "body", "")):
            return True
        attempt = getattr(err, "last_attempt", None)
        inner = attempt.exception() if attempt is not None else None
        stack.extend(e for e in (err.__cause__, err.__context__, inner) if e is not None)
    return False


# -- DSPy ---------------------------------------------------------------------------------


class DspyPeer:
    """``dspy.GEPA`` (with ``dspy.Flex`` when the installed dspy has it) or ``dspy.MIPROv2``."""

    def __init__(self, job: dict[str, Any]) -> None:
        import dspy

        self.dspy = dspy
        self.job = job
        self.inputs: list[str] = job["input_fields"]
        self.outputs: list[str] = job["output_fields"]
        self.numeric: bool = job["numeric"]
        self.settings: dict[str, Any] = job["settings"]
        self.student = self._lm(job["student"])
        self.teacher = self._lm(job["teacher"])
        dspy.configure(lm=self.student)
        spec = ", ".join(self.inputs) + " -> " + ", ".join(self.outputs)
        self.signature = dspy.Signature(spec, job["description"])
        self.program: Any = None
        self.notes: list[str] = []

    def _lm(self, endpoint: dict[str, Any]) -> Any:
        return self.dspy.LM(
            "openai/" + endpoint["model"],
            api_base=endpoint["base_url"],
            api_key=endpoint["api_key"],
            temperature=endpoint["temperature"],
            max_tokens=endpoint["max_tokens"],
            cache=False,
            num_retries=0,
        )

    def examples(self) -> list[Any]:
        return [self.dspy.Example(**row).with_inputs(*self.inputs) for row in self.job["train"]]

    def score(self, example: Any, prediction: Any) -> tuple[bool, str]:
        wrong = []
        for name in self.outputs:
            got = getattr(prediction, name, None)
            want = example[name]
            if not correct(got, want, self.numeric):
                wrong.append(f"{name}: expected {want!r}, got {str(got)[:200]!r}")
        return not wrong, "; ".join(wrong) or "correct"

    def compile(self) -> dict[str, Any]:
        if self.job["peer"] == "dspy-gepa":
            return self._gepa()
        return self._mipro()

    def _gepa(self) -> dict[str, Any]:
        dspy = self.dspy

        def metric(
            gold: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None
        ) -> Any:
            ok, feedback = self.score(gold, pred)
            return dspy.Prediction(score=1.0 if ok else 0.0, feedback=feedback)

        flex = getattr(dspy, "Flex", None)
        use_flex = bool(self.settings.get("use_flex"))
        if use_flex and flex is None:
            use_flex = False
            self.notes.append(
                f"dspy {dspy.__version__} has no dspy.Flex: plain GEPA on ChainOfThought"
            )
        if use_flex:
            broken = self._flex_sandbox_problem()
            if broken is not None:
                use_flex = False
                self.notes.append(
                    "dspy.Flex runs optimizer-written code only in its Deno/Pyodide sandbox "
                    f"(dspy.PythonInterpreter), which cannot start here ({broken}): plain GEPA "
                    "on ChainOfThought"
                )
        common = {
            "metric": metric,
            "reflection_lm": self.teacher,
            "max_metric_calls": int(self.settings["max_metric_calls"]),
            "reflection_minibatch_size": int(self.settings["reflection_minibatch_size"]),
            "num_threads": 1,
            "seed": int(self.job["seed"]),
        }
        train = self.examples()
        if use_flex and flex is not None:
            program = flex(self.signature)  # GEPA recognises Flex and rewrites its source
            self.notes.append("dspy.Flex optimised by dspy.GEPA")
        else:
            program = dspy.ChainOfThought(self.signature)
        optimizer = dspy.GEPA(**common)
        self.program = optimizer.compile(program, trainset=train, valset=train)
        return self.describe()

    def _flex_sandbox_problem(self) -> str | None:
        """Why dspy.Flex's default interpreter cannot run code here, or None."""
        try:
            with self.dspy.PythonInterpreter() as interpreter:
                interpreter.execute("print(1)")
        except Exception as exc:
            return error_text(exc).splitlines()[0][:300]
        return None

    def _mipro(self) -> dict[str, Any]:
        dspy = self.dspy

        def metric(example: Any, prediction: Any, trace: Any = None) -> bool:
            return self.score(example, prediction)[0]

        optimizer = dspy.MIPROv2(
            metric=metric,
            prompt_model=self.teacher,
            task_model=self.student,
            auto=None,
            num_candidates=int(self.settings["num_candidates"]),
            num_threads=1,
            max_errors=10_000,
            seed=int(self.job["seed"]),
            verbose=False,
        )
        self.program = optimizer.compile(
            dspy.ChainOfThought(self.signature),
            trainset=self.examples(),
            num_trials=int(self.settings["num_trials"]),
            max_bootstrapped_demos=int(self.settings["max_bootstrapped_demos"]),
            max_labeled_demos=int(self.settings["max_labeled_demos"]),
            minibatch=False,
            requires_permission_to_run=False,
        )
        return self.describe()

    def describe(self) -> dict[str, Any]:
        program = self.program
        out: dict[str, Any] = {
            "predictors": [
                {
                    "name": name,
                    "instructions": predictor.signature.instructions,
                    "demos": len(predictor.demos),
                }
                for name, predictor in program.named_predictors()
            ]
        }
        for attr in ("forward_src", "predictors_src", "module_src"):
            value = getattr(program, attr, None)
            if isinstance(value, str):
                out[attr] = value
        return out

    def predict(self, row: dict[str, Any]) -> dict[str, Any]:
        with self.dspy.context(lm=self.student):
            prediction = self.program(**{k: row.get(k) for k in self.inputs})
        return {name: _plain(getattr(prediction, name, None)) for name in self.outputs}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


# -- TextGrad -----------------------------------------------------------------------------


class TextGradPeer:
    """TextGrad's prompt optimisation (``tg.TextualGradientDescent`` on a system prompt)."""

    def __init__(self, job: dict[str, Any]) -> None:
        import textgrad as tg
        from openai import OpenAI
        from textgrad.engine.local_model_openai_api import ChatExternalClient

        self.tg = tg
        self.job = job
        self.inputs: list[str] = job["input_fields"]
        self.outputs: list[str] = job["output_fields"]
        self.numeric: bool = job["numeric"]
        self.settings: dict[str, Any] = job["settings"]
        self.notes: list[str] = []

        def engine(endpoint: dict[str, Any]) -> Any:
            client = OpenAI(base_url=endpoint["base_url"], api_key=endpoint["api_key"])
            return _LimitedEngine(
                ChatExternalClient(client=client, model_string=endpoint["model"]),
                max_tokens=int(endpoint["max_tokens"]),
                temperature=float(endpoint["temperature"]),
            )

        self.student = engine(job["student"])
        self.teacher = engine(job["teacher"])
        tg.set_backward_engine(self.teacher, override=True)
        self.system_prompt = tg.Variable(
            job["description"]
            + " Put the final answer"
            + (" (a number)" if self.numeric else "")
            + " on the last line.",
            requires_grad=True,
            role_description="system prompt to the language model",
        )
        self.model = tg.BlackboxLLM(self.student, system_prompt=self.system_prompt)

    def question(self, row: dict[str, Any]) -> str:
        if len(self.inputs) == 1:
            return str(row.get(self.inputs[0], ""))
        return "\n".join(f"{k}: {row.get(k)}" for k in self.inputs)

    def answer_of(self, text: str) -> dict[str, Any]:
        if len(self.outputs) == 1:
            return {self.outputs[0]: text}
        found: dict[str, Any] = {}
        for name in self.outputs:
            match = re.search(rf"(?im)^\s*{re.escape(name)}\s*[:=]\s*(.+)$", text)
            found[name] = match.group(1).strip() if match else None
        return found

    def accuracy(self, rows: list[dict[str, Any]]) -> float:
        hits = 0
        for row in rows:
            try:
                text = self.run(row)
            except Exception:
                continue
            got = self.answer_of(text)
            hits += all(correct(got.get(n), row[n], self.numeric) for n in self.outputs)
        return hits / max(1, len(rows))

    def run(self, row: dict[str, Any]) -> str:
        x = self.tg.Variable(
            self.question(row), requires_grad=False, role_description="query to the language model"
        )
        return str(self.model(x).value)

    def compile(self) -> dict[str, Any]:
        tg = self.tg
        from textgrad.autograd.string_based_ops import StringBasedFunction

        train = list(self.job["train"])
        rng = random.Random(int(self.job["seed"]))
        optimizer = tg.TextualGradientDescent(engine=self.teacher, parameters=[self.system_prompt])

        def equality(prediction: Any, ground_truth_answer: Any) -> int:
            return int(correct(prediction.value, ground_truth_answer.value, self.numeric))

        eval_fn = StringBasedFunction(
            equality,
            function_purpose="The runtime of string-based function that checks if the "
            "prediction is correct.",
        )
        best_prompt = self.system_prompt.value
        best = self.accuracy(train)
        history = [{"step": 0, "train_accuracy": best}]
        for step in range(1, int(self.settings["steps"]) + 1):
            batch = rng.sample(train, min(len(train), int(self.settings["batch_size"])))
            optimizer.zero_grad()
            losses = []
            try:
                for row in batch:
                    x = tg.Variable(
                        self.question(row),
                        requires_grad=False,
                        role_description="query to the language model",
                    )
                    gold_text = " ".join(str(row[n]) for n in self.outputs)
                    y = tg.Variable(
                        gold_text,
                        requires_grad=False,
                        role_description="correct answer for the query",
                    )
                    response = self.model(x)
                    losses.append(
                        eval_fn(inputs={"prediction": response, "ground_truth_answer": y})
                    )
                tg.sum(losses).backward()
                optimizer.step()
            except Exception as exc:
                # The budget is a cap like GEPA's max_metric_calls: when it runs out the
                # optimisation stops and the best prompt so far is evaluated (any other error
                # is the peer's failure, and a result).
                if not budget_spent(exc):
                    raise
                self.notes.append(
                    f"the token budget ran out during step {step}: optimisation stopped there, "
                    "the best system prompt so far is evaluated"
                )
                break
            accuracy = self.accuracy(train)
            history.append({"step": step, "train_accuracy": accuracy})
            if accuracy >= best:
                best, best_prompt = accuracy, self.system_prompt.value
            else:  # TextGrad's own tutorial keeps the best prompt on validation
                self.system_prompt.set_value(best_prompt)
        self.system_prompt.set_value(best_prompt)
        return {"system_prompt": best_prompt, "history": history}

    def predict(self, row: dict[str, Any]) -> dict[str, Any]:
        return self.answer_of(self.run(row))


class _LimitedEngine:
    """A TextGrad engine with a fixed completion limit and temperature (TextGrad's
    ``ChatExternalClient`` has no such settings); every other attribute is the engine's."""

    def __init__(self, engine: Any, *, max_tokens: int, temperature: float) -> None:
        self._engine = engine
        self._max_tokens = max_tokens
        self._temperature = temperature

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def generate(self, content: Any, system_prompt: str | None = None, **kwargs: Any) -> Any:
        kwargs.setdefault("max_tokens", self._max_tokens)
        kwargs.setdefault("temperature", self._temperature)
        return self._engine.generate(content, system_prompt=system_prompt, **kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.generate(*args, **kwargs)


PEERS = {"dspy-gepa": DspyPeer, "dspy-mipro": DspyPeer, "textgrad": TextGradPeer}


def main() -> int:
    first = sys.stdin.readline()
    if not first:
        return 1
    job = json.loads(first)
    started = time.perf_counter()
    peer: Any = None
    try:
        peer = PEERS[job["peer"]](job)
        program = peer.compile()
    except Exception as exc:  # the peer's failure is a result
        send(
            {
                "op": "failed",
                "error": error_text(exc),
                "traceback": traceback.format_exc()[-3000:],
                "notes": getattr(peer, "notes", []),
                "seconds": time.perf_counter() - started,
            }
        )
        return 0
    send(
        {
            "op": "compiled",
            "program": program,
            "notes": peer.notes,
            "seconds": time.perf_counter() - started,
        }
    )
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("op") == "close":
            break
        begin = time.perf_counter()
        try:
            outputs = peer.predict(message.get("row") or {})
            error = None
        except Exception as exc:  # e.g. the student broke the adapter's format
            outputs, error = {}, error_text(exc)
        send(
            {
                "op": "prediction",
                "outputs": outputs,
                "error": error,
                "seconds": time.perf_counter() - begin,
            }
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
