"""Reference strings: ``input.<name>`` or ``<node_id>.<field>``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["INPUT", "Ref", "parse_ref"]

INPUT = "input"


@dataclass(frozen=True)
class Ref:
    """A parsed reference. ``source`` is ``"input"`` or a node id."""

    source: str
    field: str

    @property
    def is_input(self) -> bool:
        return self.source == INPUT

    def __str__(self) -> str:
        return f"{self.source}.{self.field}"


def parse_ref(text: str) -> Ref:
    """Parse ``"a.b"`` into ``Ref("a", "b")``.

    Raises:
        ValueError: when the text is not ``<source>.<field>`` with non-empty parts.
    """
    source, dot, field = text.partition(".")
    if not dot or not source or not field or "." in field:
        raise ValueError(f"reference {text!r} must be 'input.<name>' or '<node_id>.<field>'")
    return Ref(source.strip(), field.strip())
