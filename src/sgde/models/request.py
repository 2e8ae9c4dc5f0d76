"""Helpers shared by backends: sampling seeds, token estimates, the JSON instruction."""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from sgde.runtime.backend import ChatRequest, Message

__all__ = [
    "estimate_prompt_tokens",
    "estimate_tokens",
    "json_instruction",
    "sample_seed",
    "with_json_instruction",
]

_SEED_MOD = 2**31 - 1


def sample_seed(seed: int | None, sample_index: int) -> int:
    """The sampling seed of one sample: distinct per ``sample_index``, stable across runs.

    Sample 0 keeps ``seed`` unchanged (0 when unset), so a single call with an explicit seed
    behaves exactly as asked.
    """
    base = 0 if seed is None else seed
    if sample_index == 0:
        return base % _SEED_MOD
    return (base * 1_000_003 + sample_index * 7_919) % _SEED_MOD


def estimate_tokens(text: str) -> int:
    """A deliberately generous token estimate (~3 characters per token, rounded up)."""
    return (len(text) + 2) // 3


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """Upper-leaning estimate of a request's prompt tokens (content + per-message overhead)."""
    total = sum(estimate_tokens(m.content) + 4 for m in request.messages)
    if request.json_schema is not None:
        total += estimate_tokens(json.dumps(dict(request.json_schema)))
    return total + 3


def _instruction_template() -> str:
    return (
        resources.files("sgde.models")
        .joinpath("prompts/json_instruction.md")
        .read_text(encoding="utf-8")
    )


def json_instruction(schema: Mapping[str, Any]) -> str:
    """The instruction that asks for JSON under ``schema`` when no native mode exists."""
    return _instruction_template().format(schema=json.dumps(dict(schema), indent=1))


def with_json_instruction(
    messages: tuple[Message, ...], schema: Mapping[str, Any]
) -> list[Message]:
    """``messages`` with the JSON instruction appended to the system message (or prepended)."""
    text = json_instruction(schema)
    out = list(messages)
    if out and out[0].role == "system":
        out[0] = Message("system", out[0].content.rstrip() + "\n\n" + text)
    else:
        out.insert(0, Message("system", text))
    return out
