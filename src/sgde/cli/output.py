"""Terminal-safe output: the one place where text from plans, data and models is made printable.

Everything sgde prints may carry text it did not write: plan names, node ids and prompts,
dataset values, model output, exception text from sandboxed teacher code. Printed raw, an
``ESC`` sequence in any of them can recolour the terminal, move the cursor, rewrite earlier
lines, set the window title or (on some terminals) inject input; ``\\r`` and bidirectional
overrides (U+202E, ...) make a line read differently from what it holds.

So every byte that reaches the terminal goes through this module:

- :class:`SafeConsole` (the CLI's two consoles) escapes control characters in every string
  it renders and, as a backstop, in every text segment it emits, so rich's own styling
  still works while user text cannot carry escape sequences;
- :func:`clean_text` is the same escaping for plain ``typer.echo`` output;
- :func:`dumps_json` is :func:`json.dumps` whose output also escapes DEL, C1 controls and
  bidi controls as ``\\uXXXX`` (still the same JSON value).

Control characters become visible escapes (``\\x1b``, ``\\r``, ``\\u202e``); newlines and
tabs are kept. Rich *markup* injection (``[bold]`` in a plan name) is a separate concern:
interpolate user text into markup strings only through :func:`rich.markup.escape`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from rich.console import Console, ConsoleOptions, RenderableType
from rich.segment import Segment
from rich.text import Text

__all__ = ["SafeConsole", "clean_text", "dumps_json"]

_NAMED = {0x0D: "\\r", 0x0B: "\\v", 0x0C: "\\f", 0x08: "\\b", 0x07: "\\a", 0x00: "\\0"}
_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))


def _table() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)):
        if code in (0x09, 0x0A):  # tab and newline stay
            continue
        table[code] = _NAMED.get(code, f"\\x{code:02x}")
    for code in _BIDI:
        table[code] = f"\\u{code:04x}"
    return table


_ESCAPES = _table()
_JSON_ESCAPES = {
    code: f"\\u{code:04x}" for code in (0x7F, *range(0x80, 0xA0), *_BIDI)
}  # json.dumps escapes U+0000..U+001F itself


def clean_text(text: str) -> str:
    """``text`` with control and bidi characters shown as escapes (newlines, tabs kept)."""
    return text.translate(_ESCAPES)


def dumps_json(value: Any, **options: Any) -> str:
    """:func:`json.dumps` (``ensure_ascii=False`` by default) safe to print on a terminal."""
    options.setdefault("ensure_ascii", False)
    return json.dumps(value, **options).translate(_JSON_ESCAPES)


class SafeConsole(Console):
    """A rich console that never emits control characters taken from the text it prints."""

    def render_str(self, text: str, **options: Any) -> Text:
        """Escape control characters before rich parses (and measures) the string."""
        return super().render_str(clean_text(text), **options)

    def render(
        self, renderable: RenderableType, options: ConsoleOptions | None = None
    ) -> Iterable[Segment]:
        """Rich's rendering, with control characters escaped in every text segment.

        :class:`~rich.text.Text` objects built by hand (trees, tables) bypass
        :meth:`render_str`; this catches them. Control segments (cursor moves of live
        displays) are rich's own and pass unchanged.
        """
        for segment in super().render(renderable, options):
            if segment.control or segment.text.isprintable() or not segment.text:
                yield segment
            else:
                cleaned = clean_text(segment.text)
                yield segment if cleaned == segment.text else Segment(cleaned, segment.style)
