"""Where each value of a plan file sits: YAML paths mapped to 1-based line numbers.

A :class:`SourceMap` is built while a plan file is parsed (see :func:`sgde.planfile.parse_plan`)
and lets validation name ``file:line`` for every problem. Paths are tuples of mapping keys
and sequence indices, e.g. ``("nodes", 0, "prompt")``.

YAML is read with :class:`BoundedLoader`, a ``SafeLoader`` that keeps a hostile file from
hanging sgde or exhausting memory: aliases may not expand the document past
:data:`MAX_YAML_NODES` values (a "billion laughs" file of 700 bytes would otherwise expand
to ~10⁹ values), recursive aliases and nesting deeper than :data:`MAX_YAML_DEPTH` levels are
refused, and values Python cannot build (an integer of more than 4,300 digits, a date that
does not exist) become YAML errors with their line.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = [
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "BoundedLoader",
    "DuplicateKey",
    "Location",
    "SourceMap",
    "YamlPath",
    "compose_yaml",
    "describe_yaml_error",
]

YamlPath = tuple[str | int, ...]

MAX_YAML_NODES = 50_000
"""Most values a YAML document may hold once its aliases are expanded.

Real plans hold hundreds to a few thousand; PyYAML composes roughly 10,000-25,000 values a
second, so the largest accepted document still loads in a few seconds.
"""

MAX_YAML_DEPTH = 100
"""Deepest nesting of mappings and sequences in a YAML document."""


class BoundedLoader(yaml.SafeLoader):
    """A ``SafeLoader`` with bounded alias expansion, nesting depth and value construction.

    Raises :class:`yaml.YAMLError` (with the line) instead of expanding a document past
    :data:`MAX_YAML_NODES` values, nesting past :data:`MAX_YAML_DEPTH` levels, following a
    recursive alias, or leaking ``ValueError``/``OverflowError`` from a scalar.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._expanded = 0
        self._depth = 0
        self._open_anchors: set[str] = set()
        self._sizes: dict[int, int] = {}

    def _limit(self, message: str, mark: Any) -> yaml.YAMLError:
        return yaml.composer.ComposerError(None, None, message, mark)

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent):
            anchor = str(event.anchor)
            if anchor in self._open_anchors:
                raise self._limit(
                    f"recursive alias *{anchor} (an anchor used inside itself)", event.start_mark
                )
            target = self.anchors.get(anchor)
            if target is not None:
                self._expanded += _expanded_size(target, self._sizes)
                if self._expanded > MAX_YAML_NODES:
                    raise self._limit(
                        f"aliases expand the document past {MAX_YAML_NODES:,} values "
                        f"(at alias *{anchor})",
                        event.start_mark,
                    )
            return super().compose_node(parent, index)
        self._expanded += 1
        if self._expanded > MAX_YAML_NODES:
            raise self._limit(
                f"the document holds more than {MAX_YAML_NODES:,} values", event.start_mark
            )
        self._depth += 1
        opened: str | None = getattr(event, "anchor", None)
        if self._depth > MAX_YAML_DEPTH:
            raise self._limit(f"nested more than {MAX_YAML_DEPTH} levels deep", event.start_mark)
        if opened:
            self._open_anchors.add(opened)
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1
            if opened:
                self._open_anchors.discard(opened)

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            detail = (
                str(exc).splitlines()[0].split(";")[0][:120] if str(exc) else type(exc).__name__
            )
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"cannot read the value {node.tag.rsplit(':', 1)[-1]}: {detail}",
                node.start_mark,
            ) from None


def _expanded_size(root: yaml.Node, sizes: dict[int, int]) -> int:
    """Values under ``root`` with aliases expanded (memoised by node; iterative)."""
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = _children(node)
        if children_done:
            sizes[id(node)] = 1 + sum(sizes.get(id(c), 1) for c in children)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


@dataclass(frozen=True)
class Location:
    """Position of one value in the file.

    Attributes:
        line: 1-based line of the mapping key (or of the sequence item).
        text_line: 1-based line where the value's text starts; for a block scalar
            (``|`` or ``>``) this is the line after the indicator.
    """

    line: int
    text_line: int


@dataclass(frozen=True)
class DuplicateKey:
    """A mapping key that occurs twice (YAML would silently keep the last value)."""

    path: YamlPath
    line: int
    first_line: int


class SourceMap(Mapping[YamlPath, Location]):
    """Read-only map from YAML paths to :class:`Location`.

    Args:
        locations: Path → location, as collected from the composed YAML tree.
        duplicates: Duplicate keys found while collecting.
    """

    def __init__(
        self,
        locations: Mapping[YamlPath, Location],
        duplicates: tuple[DuplicateKey, ...] = (),
    ) -> None:
        self._locations = dict(locations)
        self.duplicates = duplicates

    def __getitem__(self, path: YamlPath) -> Location:
        return self._locations[path]

    def __iter__(self) -> Iterator[YamlPath]:
        return iter(self._locations)

    def __len__(self) -> int:
        return len(self._locations)

    def line(self, *path: str | int) -> int | None:
        """Line of ``path``, or of its nearest ancestor present in the file."""
        loc = self._find(path)
        return loc.line if loc is not None else None

    def text_line(self, path: YamlPath, offset: int = 1) -> int | None:
        """File line of line ``offset`` (1-based) inside the text value at ``path``.

        Exact for block scalars and single-line values; for folded or quoted multi-line
        scalars it is the best estimate YAML allows.
        """
        loc = self._locations.get(path)
        if loc is None:
            return self.line(*path)
        return loc.text_line + max(offset, 1) - 1

    def _find(self, path: tuple[str | int, ...]) -> Location | None:
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            loc = self._locations.get(prefix)
            if loc is None:
                # Pydantic reports integer dict keys as ints; YAML keeps their text.
                loc = self._locations.get(tuple(str(p) for p in prefix))
            if loc is not None:
                return loc
        return None

    @classmethod
    def from_node(cls, root: yaml.Node) -> SourceMap:
        """Collect locations (and duplicate keys) from a composed YAML tree."""
        locations: dict[YamlPath, Location] = {(): _location(root, root)}
        duplicates: list[DuplicateKey] = []
        _collect(root, (), locations, duplicates, set())
        return cls(locations, tuple(duplicates))


def _location(key: yaml.Node, value: yaml.Node) -> Location:
    block = isinstance(value, yaml.ScalarNode) and value.style in ("|", ">")
    text_line = value.start_mark.line + (2 if block else 1)
    return Location(line=key.start_mark.line + 1, text_line=text_line)


def _collect(
    node: yaml.Node,
    path: YamlPath,
    out: dict[YamlPath, Location],
    duplicates: list[DuplicateKey],
    active: set[int],
) -> None:
    if id(node) in active:  # a recursive alias: stop rather than loop
        return
    active.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = str(key_node.value)
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if key in seen and key != "<<":
                duplicates.append(DuplicateKey(child, line, seen[key]))
            else:
                seen[key] = line
            # The loader keeps the last of duplicate keys, so the map does too.
            out[child] = _location(key_node, value_node)
            _collect(value_node, child, out, duplicates, active)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            out[child] = _location(item, item)
            _collect(item, child, out, duplicates, active)
    active.discard(id(node))


def compose_yaml(
    text: str, loader: type[BoundedLoader] = BoundedLoader
) -> tuple[Any, SourceMap] | None:
    """Parse one YAML document and map where each of its values sits.

    Args:
        text: The document.
        loader: A :class:`BoundedLoader` subclass (plans keep timestamps as text).

    Returns:
        ``(data, source_map)``, or None for an empty document.

    Raises:
        yaml.YAMLError: for invalid YAML, and for documents over the limits of
            :class:`BoundedLoader` (see :func:`describe_yaml_error`).
    """
    instance = loader(text)
    try:
        try:
            root = instance.get_single_node()
            if root is None:
                return None
            return instance.construct_document(root), SourceMap.from_node(root)
        except (RecursionError, MemoryError) as exc:
            problem = "nested too deeply" if isinstance(exc, RecursionError) else "too large"
            raise yaml.composer.ComposerError(
                None, None, f"the document is {problem}", instance.get_mark()
            ) from None
    finally:
        instance.dispose()


def describe_yaml_error(exc: yaml.YAMLError) -> tuple[str, int | None]:
    """A one-line ``"invalid YAML: ..."`` message and the 1-based line, when known."""
    if not isinstance(exc, yaml.MarkedYAMLError):
        return f"invalid YAML: {exc}", None
    mark = exc.problem_mark or exc.context_mark
    message = exc.problem or "syntax error"
    if exc.context:
        where = f" at line {exc.context_mark.line + 1}" if exc.context_mark else ""
        message = f"{message} ({exc.context}{where})"
    return f"invalid YAML: {message}", mark.line + 1 if mark else None
