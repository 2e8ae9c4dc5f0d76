"""Deterministic fan-in for consensus nodes: per-field majority vote.

Rules (stable, documented, never an LLM judge):

* A sample is either a parsed object (a valid vote) or ``None`` (it failed to parse or
  errored: an invalid vote that counts for nothing).
* Each field is voted separately over the valid samples that contain it. Values are grouped
  by :func:`sgde.runtime.numbers.vote_key`: numbers (and numeric strings) rounded to 6
  decimals with integral values as integers; other strings stripped, whitespace-collapsed
  and case-folded; lists/objects element-wise.
* The class with the most votes wins. **Tie-break:** among tied classes, the one whose
  first vote came from the lowest sample index wins (so the result never depends on dict
  or hash order).
* The winning value is the *original* value of the first sample in the winning class.
* Fields appear in the result in order of first appearance across samples.
* **Grounded fields** (the consensus node's ``grounded``: values the wrapped node copies
  from its text inputs): a sample's value counts for such a field only when it occurs in
  those texts (:func:`occurs_in`: a number among the texts' numbers, text as a whole-word
  match, case-folded; a list when each item does). A copy that is not in the text is a
  misread, whatever the majority. When no sample's value occurs, every valid sample counts,
  as for any field.

The fan-out (:func:`fan_out`): ``n`` samples of the wrapped node's own prompt at the
consensus temperature, or, when the consensus node lists ``members``, one sample per member,
each the wrapped node with that member's system prompt, user template and temperature.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sgde.plan.model import ConsensusNode, LlmNode
from sgde.runtime.numbers import numbers_match, to_number, vote_key

__all__ = ["Sample", "VoteResult", "fan_out", "occurs_in", "vote"]

_NUMBER = re.compile(r"(?<![\w.])[-+]?\d[\d,]*(?:\.\d+)?")
"""A number as texts write it (thousands separators allowed), for :func:`occurs_in`."""


@dataclass(frozen=True)
class Sample:
    """What one sample of a fan-out asks.

    Attributes:
        node: The wrapped node as this sample asks it (a member's prompt in place).
        temperature: Its sampling temperature.
        member: The member's name (None for a plain temperature sample).
    """

    node: LlmNode
    temperature: float
    member: str | None = None


def fan_out(node: ConsensusNode, wrapped: LlmNode) -> list[Sample]:
    """The samples of consensus node ``node`` over ``wrapped``, in sample-index order.

    Without members: ``node.n`` samples of ``wrapped`` at the consensus temperature (the
    wrapped node's when the consensus node sets none). With members: one sample per member,
    ``wrapped`` with the member's ``system``/``prompt`` where it sets them, at the member's
    temperature (else the consensus temperature, else the wrapped node's).
    """
    base = wrapped.temperature if node.temperature is None else node.temperature
    if not node.members:
        return [Sample(wrapped, base) for _ in range(node.n)]
    samples: list[Sample] = []
    for member in node.members:
        update: dict[str, Any] = {}
        if member.system is not None:
            update["system"] = member.system
        if member.prompt is not None:
            update["prompt"] = member.prompt
        asked = wrapped.model_copy(update=update) if update else wrapped
        temperature = base if member.temperature is None else member.temperature
        samples.append(Sample(asked, temperature, member.name))
    return samples


@dataclass(frozen=True)
class VoteResult:
    """Outcome of a vote.

    Attributes:
        value: The winning value per field (empty when no sample was valid).
        tally: Per field, ``(value as JSON text, votes)`` for every class, most votes first
            (ties in order of first occurrence).
        valid: Number of valid (non-None) samples.
        n: Number of samples, valid or not.
        winners: Per field, the index of the sample whose value was taken.
        ungrounded: Per grounded field, how many valid samples did not count because their
            value does not occur in the texts (0 when none did, or when none occurred).
    """

    value: dict[str, Any]
    tally: dict[str, list[tuple[str, int]]]
    valid: int
    n: int = 0
    winners: dict[str, int] = field(default_factory=dict)
    ungrounded: dict[str, int] = field(default_factory=dict)

    def agreement(self) -> dict[str, float]:
        """Per field, the winning class's share of the valid samples (0..1)."""
        if self.valid == 0:
            return {}
        return {
            name: (counts[0][1] / self.valid if counts else 0.0)
            for name, counts in self.tally.items()
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for traces)."""
        return {
            "value": self.value,
            "tally": {k: [[text, count] for text, count in v] for k, v in self.tally.items()},
            "valid": self.valid,
            "n": self.n,
            "winners": dict(self.winners),
            "agreement": {k: round(v, 6) for k, v in self.agreement().items()},
            "ungrounded": dict(self.ungrounded),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VoteResult:
        """Inverse of :meth:`to_dict`."""
        tally = {
            str(k): [(str(text), int(count)) for text, count in v]
            for k, v in dict(data.get("tally", {})).items()
        }
        return cls(
            value=dict(data.get("value", {})),
            tally=tally,
            valid=int(data.get("valid", 0)),
            n=int(data.get("n", 0)),
            winners={str(k): int(v) for k, v in dict(data.get("winners", {})).items()},
            ungrounded={str(k): int(v) for k, v in dict(data.get("ungrounded", {})).items()},
        )


def _display(value: Any) -> str:
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)


@dataclass
class _Class:
    first_index: int
    value: Any
    count: int = 0


def occurs_in(value: Any, texts: Sequence[str]) -> bool:
    """Whether ``value`` is written in one of ``texts``.

    A number (or numeric string) occurs when a number the texts write equals it; other text
    when it matches case-folded as whole words (``"R"`` does not occur in ``"MIRROR"``; text
    without a letter or digit, such as ``","`` or ``""``, never occurs); a list when every
    item occurs. Other values (booleans,
    objects, ``None``) are not copies of the text: they never occur.
    """
    if isinstance(value, list):
        return bool(value) and all(occurs_in(v, texts) for v in value)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return False
    number = to_number(value)
    if number is not None:
        return any(
            numbers_match(to_number(m.group(0)), number)
            for text in texts
            for m in _NUMBER.finditer(text)
        )
    assert isinstance(value, str)  # numbers are handled above
    words = " ".join(value.split()).casefold()
    if not any(ch.isalnum() for ch in words):
        return False  # punctuation is in every text, and is no value
    pattern = re.compile(rf"(?<!\w){re.escape(words)}(?!\w)")
    return any(pattern.search(" ".join(text.split()).casefold()) for text in texts)


def vote(
    samples: Sequence[Mapping[str, Any] | None],
    *,
    grounded: Collection[str] = (),
    texts: Sequence[str] = (),
) -> VoteResult:
    """Per-field majority vote over samples.

    Args:
        samples: One entry per sample, in sample-index order; ``None`` for an invalid one.
        grounded: Fields whose votes count only where the value occurs in ``texts``
            (while some sample's does; see the module).
        texts: The wrapped node's text inputs.

    Returns:
        The vote. With no valid sample, ``value`` and ``tally`` are empty and ``valid`` is 0;
        callers decide whether that is an error.
    """
    # grounded field -> indices of the samples whose value of it occurs in the texts
    occurring = {
        name: {
            i
            for i, s in enumerate(samples)
            if s is not None and name in s and occurs_in(s[name], texts)
        }
        for name in grounded
    }
    fields: dict[str, dict[Hashable, _Class]] = {}
    valid = 0
    ungrounded: dict[str, int] = {}
    for index, sample in enumerate(samples):
        if sample is None:
            continue
        valid += 1
        for name, item in sample.items():
            if occurring.get(name) and index not in occurring[name]:
                ungrounded[name] = ungrounded.get(name, 0) + 1
                continue
            classes = fields.setdefault(name, {})
            key = vote_key(item)
            cls = classes.get(key)
            if cls is None:
                cls = classes[key] = _Class(first_index=index, value=item)
            cls.count += 1

    value: dict[str, Any] = {}
    tally: dict[str, list[tuple[str, int]]] = {}
    winners: dict[str, int] = {}
    for name, classes in fields.items():
        ranked = sorted(classes.values(), key=lambda c: (-c.count, c.first_index))
        best = ranked[0]
        value[name] = best.value
        winners[name] = best.first_index
        tally[name] = [(_display(c.value), c.count) for c in ranked]
    return VoteResult(
        value=value,
        tally=tally,
        valid=valid,
        n=len(samples),
        winners=winners,
        ungrounded=ungrounded,
    )
