"""The JSON messages between sgde and a peer worker (``scripts/peer_worker.py``).

The worker runs with the peer venv's interpreter and cannot import sgde, so the protocol is
plain JSON lines on its stdin/stdout. Lines the worker writes for sgde start with
:data:`MARKER`; anything else on stdout (the peers' own prints, progress bars) is kept as log.

1. sgde sends a :class:`PeerJob` (``{"op": "compile", ...}``); the worker optimises and
   answers ``{"op": "compiled", ...}`` (:class:`CompileReply`) — or ``{"op": "failed"}`` with
   the exception, which is a result, not a crash of sgde.
2. sgde sends ``{"op": "predict", "row": {...}}`` per test row; the worker answers
   ``{"op": "prediction", ...}`` (:class:`PredictReply`).
3. sgde sends ``{"op": "close"}``; the worker exits.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sgde.errors import UsageError

__all__ = [
    "MARKER",
    "CompileReply",
    "Endpoint",
    "PeerJob",
    "PredictReply",
    "decode_line",
    "encode",
]

MARKER = "@@sgde-peer@@ "


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Endpoint(_Model):
    """An OpenAI-compatible endpoint the peer calls (sgde's metering proxy)."""

    base_url: str
    model: str = "local"
    api_key: str = "sk-local"
    max_tokens: int = 384
    temperature: float = 0.0


class PeerJob(_Model):
    """What to optimise.

    Attributes:
        op: Always ``"compile"``.
        peer: Peer name (``dspy-gepa``, ``dspy-mipro``, ``textgrad``).
        description: The task in words (the program's instructions before optimising).
        input_fields / output_fields: Field names of a row.
        numeric: Whether the (single) output is a number, compared with an absolute
            tolerance by the peer's metric; otherwise outputs are compared as trimmed,
            case-folded strings.
        train: Labelled training rows (inputs and outputs by field name).
        student / teacher: Endpoints.
        settings: Peer settings (see :data:`~sgde.evaluation.peers.specs.PEERS`).
        seed: Seed of the peer's sampled choices.
    """

    op: Literal["compile"] = "compile"
    peer: str
    description: str
    input_fields: list[str] = Field(min_length=1)
    output_fields: list[str] = Field(min_length=1)
    numeric: bool = True
    train: list[dict[str, Any]]
    student: Endpoint
    teacher: Endpoint
    settings: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0


class CompileReply(_Model):
    """The worker's answer to a job.

    Attributes:
        op: ``"compiled"`` or ``"failed"``.
        program: What the peer produced, JSON-ready (instructions, demos, source).
        notes: What the worker decided (e.g. ``dspy.Flex`` absent -> plain GEPA).
        error: ``"Type: message"`` of a failed optimisation.
        traceback: Its last lines.
        seconds: Wall time of the optimisation.
    """

    op: Literal["compiled", "failed"]
    program: dict[str, Any] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    seconds: float = 0.0


class PredictReply(_Model):
    """The optimised program's answer to one row.

    Attributes:
        outputs: Output values by field name (text, as the program produced them).
        error: ``"Type: message"`` when the program failed on this row (a format failure
            of the student, an adapter error...).
        seconds: Wall time.
    """

    op: Literal["prediction"] = "prediction"
    outputs: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0


def encode(message: BaseModel | dict[str, Any]) -> str:
    """One protocol line (no marker: sgde writes to the worker's stdin, which has no noise)."""
    data = message.model_dump(mode="json") if isinstance(message, BaseModel) else message
    return json.dumps(data, ensure_ascii=False) + "\n"


def decode_line(line: str) -> dict[str, Any] | None:
    """The message of a worker stdout line, or None for a line that is the peer's own output.

    Raises:
        UsageError: a marked line that is not a JSON object (a broken worker).
    """
    if not line.startswith(MARKER):
        return None
    try:
        data = json.loads(line[len(MARKER) :])
    except ValueError as exc:
        raise UsageError(f"peer worker wrote a malformed protocol line: {line[:200]!r}") from exc
    if not isinstance(data, dict) or "op" not in data:
        raise UsageError(f"peer worker wrote a protocol line without 'op': {line[:200]!r}")
    return data
