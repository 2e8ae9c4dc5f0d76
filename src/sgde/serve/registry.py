"""The plans a server serves: versions by content hash, traffic weights, promote and rollback.

Sources are plan files and directories (every ``*.yaml``/``*.yml`` in them except the routing
file). A version is a plan's content hash (:func:`sgde.plan.plan_hash`), so the same plan
under two file names is one version. Each plan name has a traffic split over its versions:

* the weights in the routing file (``routing.yaml``, see :func:`load_routing`), else
* everything to the version whose file changed last (drop a new file in: it is live;
  delete it: the previous one is back).

A request may pin a version (a unique prefix of its hash suffices). Otherwise a caller key
picks a version by hashing (sticky: the same caller keeps its version while the weights
stay), and requests without a key are spread by smooth weighted round robin, which hits the
weights exactly over every cycle. Promote, set-weights and rollback swap the split at once;
requests already running keep the plan object they started with, so none fails.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sgde.errors import DataError, SgdeError
from sgde.plan import Plan, plan_hash
from sgde.planfile import load_plan
from sgde.planfile.files import read_user_text, write_text_atomic
from sgde.serve.errors import ApiError

__all__ = [
    "PlanEntry",
    "PlanVersion",
    "Registry",
    "load_routing",
    "scan_sources",
    "short_version",
]

logger = logging.getLogger("sgde.serve")

ROUTING_SCHEMA_VERSION = 1
_HISTORY = 32


def short_version(version: str) -> str:
    """The first 12 hex digits of a ``sha256:…`` version, for logs and headers."""
    return version.split(":", 1)[-1][:12]


@dataclass(frozen=True)
class PlanVersion:
    """One servable version of a plan.

    Attributes:
        plan: The plan.
        version: Its content hash (``sha256:…``).
        source: The file it came from (``"<memory>"`` for plans passed in).
        mtime: Modification time of the file (ordering of "newest").
    """

    plan: Plan
    version: str
    source: str
    mtime: float = 0.0

    @property
    def name(self) -> str:
        """The plan's name."""
        return self.plan.name

    @property
    def short(self) -> str:
        """Short version (12 hex digits)."""
        return short_version(self.version)


@dataclass(frozen=True)
class PlanEntry:
    """All versions of one plan name and their traffic split (immutable).

    Attributes:
        name: Plan name.
        versions: Version -> plan version.
        weights: Version -> share of traffic (positive, summing to 1).
    """

    name: str
    versions: dict[str, PlanVersion]
    weights: dict[str, float]

    def find(self, text: str) -> PlanVersion:
        """The version named by a full hash or a unique prefix of its hex digits.

        Raises:
            ApiError: 404 when none or several versions match.
        """
        wanted = text.strip().lower()
        hexpart = wanted.split(":", 1)[-1]
        matches = [
            v
            for k, v in self.versions.items()
            if k == wanted or k.split(":", 1)[-1].startswith(hexpart)
        ]
        if len(hexpart) < 4 or len(matches) != 1:
            known = ", ".join(v.short for v in self.versions.values())
            why = "matches several versions" if len(matches) > 1 else "is not a served version"
            if len(hexpart) < 4:
                why = "is too short (give at least 4 hex digits)"
            raise ApiError(
                404,
                "unknown_version",
                f"version {text!r} of plan '{self.name}' {why}; served versions: {known}",
                field="version",
            )
        return matches[0]


@dataclass
class _Router:
    """Smooth weighted round robin state of one plan (requests without a caller key)."""

    weights: dict[str, float]
    current: dict[str, float] = field(default_factory=dict)

    def next(self) -> str:
        total = 0.0
        best: str | None = None
        for version, weight in self.weights.items():
            value = self.current.get(version, 0.0) + weight
            self.current[version] = value
            total += weight
            if best is None or value > self.current[best]:
                best = version
        assert best is not None
        self.current[best] -= total
        return best


def sticky_pick(weights: Mapping[str, float], name: str, caller: str) -> str:
    """The version a caller key maps to: a hash of (plan, key) placed on the weight line."""
    digest = hashlib.sha256(f"{name}\x1f{caller}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    cumulative = 0.0
    last = ""
    for version, weight in sorted(weights.items()):
        cumulative += weight
        last = version
        if point < cumulative:
            return version
    return last


def scan_sources(
    sources: Sequence[Path], *, skip: Path | None = None
) -> dict[Path, tuple[float, int]]:
    """Plan files under the sources with their (mtime, size): what the watcher compares.

    Raises:
        ApiError: never; a missing source is simply absent from the result.
    """
    found: dict[Path, tuple[float, int]] = {}
    skip_resolved = skip.resolve() if skip is not None else None
    for source in sources:
        if source.is_dir():
            files: Iterable[Path] = sorted(
                p for p in source.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()
            )
        elif source.is_file():
            files = [source]
        else:
            continue
        for path in files:
            if skip_resolved is not None and path.resolve() == skip_resolved:
                continue
            try:
                st = path.stat()
            except OSError:
                continue
            found[path] = (st.st_mtime, st.st_size)
    return found


def load_routing(path: Path | None) -> dict[str, dict[str, float]]:
    """Read the routing file: ``{plans: {NAME: {weights: {VERSION: WEIGHT}}}}``.

    Returns:
        Plan name -> version (or prefix) -> weight; empty when there is no file.

    Raises:
        SgdeError: The file exists but is not a valid routing file (names the field).
    """
    if path is None or not path.exists():
        return {}
    data = yaml.safe_load(read_user_text(path, what="routing file")) or {}
    if not isinstance(data, dict) or not isinstance(data.get("plans", {}), dict):
        raise SgdeError(
            f"{path}: a routing file is a mapping with 'plans: {{NAME: {{weights: ...}}}}'"
        )
    out: dict[str, dict[str, float]] = {}
    for name, spec in (data.get("plans") or {}).items():
        weights = spec.get("weights") if isinstance(spec, dict) else None
        if not isinstance(weights, dict) or not weights:
            raise SgdeError(f"{path}: plans.{name}.weights must map versions to weights")
        parsed: dict[str, float] = {}
        for version, weight in weights.items():
            if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
                raise SgdeError(f"{path}: plans.{name}.weights.{version} must be a number >= 0")
            parsed[str(version)] = float(weight)
        out[str(name)] = parsed
    return out


def save_routing(path: Path, routes: Mapping[str, Mapping[str, float]]) -> None:
    """Write the routing file atomically (readers never see half of it)."""
    data = {
        "schema_version": ROUTING_SCHEMA_VERSION,
        "plans": {
            name: {"weights": {v: (int(w) if float(w).is_integer() else w) for v, w in ws.items()}}
            for name, ws in sorted(routes.items())
        },
    }
    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))


def _normalise(entry_name: str, weights: Mapping[str, float]) -> dict[str, float]:
    total = sum(w for w in weights.values() if w > 0)
    if total <= 0 or not math.isfinite(total):
        raise ApiError(
            422,
            "invalid_weights",
            f"the weights of plan '{entry_name}' must include a positive weight",
            field="weights",
        )
    return {v: w / total for v, w in weights.items() if w > 0}


class Registry:
    """The served plans: loads sources, keeps the traffic split, routes requests.

    Args:
        sources: Plan files and directories.
        routing_path: The routing file (read at load; admin changes are saved to it).
        plans: Plans given directly (e.g. by tests or Python callers).
    """

    def __init__(
        self,
        sources: Sequence[Path] = (),
        *,
        routing_path: Path | None = None,
        plans: Sequence[Plan] = (),
    ) -> None:
        self.sources = [Path(s) for s in sources]
        self.routing_path = routing_path
        self._memory = [PlanVersion(p, plan_hash(p), "<memory>") for p in plans]
        self._files: dict[Path, PlanVersion] = {}
        self._fingerprint: dict[Path, tuple[float, int]] = {}
        self._explicit: dict[str, dict[str, float]] = {}
        self._entries: dict[str, PlanEntry] = {}
        self._routers: dict[str, _Router] = {}
        self._history: dict[str, list[dict[str, float]]] = {}
        self._routing_seen: tuple[float, int] | None = None
        self.generation = 0

    # ------------------------------------------------------------------ loading

    def load(self) -> list[PlanVersion]:
        """First load: every source must load (raises on the first bad plan file)."""
        fingerprint = scan_sources(self.sources, skip=self.routing_path)
        missing = [s for s in self.sources if not s.exists()]
        if missing:
            raise DataError(
                "no such plan file or directory",
                path=str(missing[0]),
                hint="pass plan files (YAML) or directories of plan files",
            )
        files = {path: self._load_file(path, mtime) for path, (mtime, _) in fingerprint.items()}
        if not files and not self._memory:
            raise DataError(
                "no plan files (*.yaml, *.yml) to serve",
                path=", ".join(str(s) for s in self.sources),
            )
        self._explicit = load_routing(self.routing_path)
        self._fingerprint, self._files = fingerprint, files
        return self._rebuild()

    def changed(self) -> bool:
        """Whether the served files (or the routing file) changed since the last load."""
        return scan_sources(self.sources, skip=self.routing_path) != self._fingerprint or (
            self._routing_stamp() != self._routing_seen
        )

    def _routing_stamp(self) -> tuple[float, int] | None:
        if self.routing_path is None or not self.routing_path.exists():
            return None
        st = self.routing_path.stat()
        return (st.st_mtime, st.st_size)

    def reload(self) -> tuple[list[PlanVersion], list[str]]:
        """Reload changed files. A file that no longer loads keeps its previous version.

        Returns:
            The versions new in this load, and one message per file that failed.
        """
        fingerprint = scan_sources(self.sources, skip=self.routing_path)
        files: dict[Path, PlanVersion] = {}
        problems: list[str] = []
        for path, (mtime, size) in fingerprint.items():
            old = self._files.get(path)
            if old is not None and self._fingerprint.get(path) == (mtime, size):
                files[path] = old
                continue
            try:
                files[path] = self._load_file(path, mtime)
            except (SgdeError, OSError) as exc:
                first = str(exc).splitlines()[0]
                problems.append(first if str(path) in first else f"{path}: {first}")
                if old is not None:
                    files[path] = old
        try:
            self._explicit = load_routing(self.routing_path)
        except SgdeError as exc:
            problems.append(str(exc))
        before = {v.version for e in self._entries.values() for v in e.versions.values()}
        self._fingerprint, self._files = fingerprint, files
        self._rebuild()
        added = [
            v
            for e in self._entries.values()
            for v in e.versions.values()
            if v.version not in before
        ]
        return added, problems

    def _load_file(self, path: Path, mtime: float) -> PlanVersion:
        plan = load_plan(path)
        return PlanVersion(plan, plan_hash(plan), str(path), mtime)

    def _rebuild(self) -> list[PlanVersion]:
        self._routing_seen = self._routing_stamp()
        grouped: dict[str, dict[str, PlanVersion]] = {}
        for pv in [*self._memory, *sorted(self._files.values(), key=lambda v: v.mtime)]:
            grouped.setdefault(pv.name, {})[pv.version] = pv  # a later file of one hash wins
        entries: dict[str, PlanEntry] = {}
        for name, versions in grouped.items():
            weights = self._weights_for(name, versions)
            entries[name] = PlanEntry(name, versions, weights)
            old = self._entries.get(name)
            if old is None or old.weights != weights or name not in self._routers:
                self._routers[name] = _Router(dict(weights))
        for name in set(self._routers) - set(entries):
            del self._routers[name]
        self._entries = entries
        self.generation += 1
        return [v for e in entries.values() for v in e.versions.values()]

    def _weights_for(self, name: str, versions: Mapping[str, PlanVersion]) -> dict[str, float]:
        explicit = self._explicit.get(name)
        if explicit:
            resolved: dict[str, float] = {}
            for key, weight in explicit.items():
                match = _match(versions, key)
                if match is None:
                    logger.warning(
                        "routing: plan '%s' version %s is not served; its weight is ignored",
                        name,
                        key,
                    )
                    continue
                resolved[match] = resolved.get(match, 0.0) + weight
            if any(w > 0 for w in resolved.values()):
                return _normalise(name, resolved)
        newest = max(versions.values(), key=lambda v: v.mtime)
        return {newest.version: 1.0}

    def drop(self, version: str) -> None:
        """Stop serving one version (e.g. its models cannot be bound); its file is skipped
        until it changes again."""
        for path, pv in list(self._files.items()):
            if pv.version == version:
                del self._files[path]
        self._memory = [v for v in self._memory if v.version != version]
        self._rebuild()

    # ------------------------------------------------------------------ reading

    @property
    def entries(self) -> dict[str, PlanEntry]:
        """Plan name -> entry (a snapshot; replaced, never mutated, on changes)."""
        return self._entries

    def entry(self, name: str) -> PlanEntry:
        """The entry of a plan name.

        Raises:
            ApiError: 404 naming the served plans.
        """
        entry = self._entries.get(name)
        if entry is None:
            known = ", ".join(sorted(self._entries)) or "none"
            raise ApiError(
                404, "unknown_plan", f"no plan named '{name}' is served; served plans: {known}"
            )
        return entry

    def route(
        self, name: str, *, version: str | None = None, caller: str | None = None
    ) -> PlanVersion:
        """Pick the version that serves one request.

        Args:
            name: Plan name.
            version: A pinned version (full hash or unique prefix), if any.
            caller: A caller key for a sticky split, if any.

        Raises:
            ApiError: 404 for an unknown plan or version.
        """
        entry = self.entry(name)
        if version:
            return entry.find(version)
        if len(entry.weights) == 1:
            return entry.versions[next(iter(entry.weights))]
        if caller:
            return entry.versions[sticky_pick(entry.weights, name, caller)]
        return entry.versions[self._routers[name].next()]

    # ------------------------------------------------------------------ changing the split

    def set_weights(self, name: str, weights: Mapping[str, float]) -> dict[str, float]:
        """Set the traffic split of a plan (versions by full hash or unique prefix).

        Raises:
            ApiError: 404 unknown plan/version, 422 no positive weight.
        """
        entry = self.entry(name)
        resolved: dict[str, float] = {}
        for key, weight in weights.items():
            if weight < 0 or not math.isfinite(weight):
                raise ApiError(
                    422,
                    "invalid_weights",
                    "weights must be finite numbers >= 0",
                    field=f"weights.{key}",
                )
            version = entry.find(key).version
            resolved[version] = resolved.get(version, 0.0) + weight
        normalised = _normalise(name, resolved)
        self._history.setdefault(name, []).append(dict(entry.weights))
        del self._history[name][:-_HISTORY]
        self._apply(name, normalised)
        return normalised

    def promote(self, name: str, version: str) -> dict[str, float]:
        """Send all traffic of a plan to one version."""
        target = self.entry(name).find(version)
        return self.set_weights(name, {target.version: 1.0})

    def rollback(self, name: str) -> dict[str, float]:
        """Restore the split in force before the last promote / set-weights.

        Raises:
            ApiError: 409 when there is nothing to roll back to.
        """
        entry = self.entry(name)
        history = self._history.get(name) or []
        while history:
            previous = {v: w for v, w in history.pop().items() if v in entry.versions}
            if previous:
                weights = _normalise(name, previous)
                self._apply(name, weights)
                return weights
        raise ApiError(
            409,
            "nothing_to_roll_back",
            f"plan '{name}' has no earlier traffic split to roll back to "
            "(rollback undoes a promote or a weights change made since the server started)",
        )

    def _apply(self, name: str, weights: dict[str, float]) -> None:
        entry = self._entries[name]
        self._explicit[name] = dict(weights)
        entries = dict(self._entries)
        entries[name] = PlanEntry(name, entry.versions, weights)
        self._routers[name] = _Router(dict(weights))
        self._entries = entries
        self.generation += 1
        if self.routing_path is not None:
            save_routing(self.routing_path, self._explicit)
            self._routing_seen = self._routing_stamp()
        logger.info(
            "routing: plan '%s' now %s",
            name,
            ", ".join(f"{short_version(v)}={w:.0%}" for v, w in weights.items()),
        )

    def describe(self) -> list[dict[str, Any]]:
        """JSON-ready list of plans, versions, weights and schemas (``GET /v1/plans``)."""
        out: list[dict[str, Any]] = []
        for name in sorted(self._entries):
            entry = self._entries[name]
            out.append(
                {
                    "name": name,
                    "versions": [
                        {
                            "version": v.version,
                            "short": v.short,
                            "weight": round(entry.weights.get(v.version, 0.0), 6),
                            "source": v.source,
                            "description": v.plan.description,
                            "input_schema": input_schema(v.plan),
                            "output_schema": output_schema(v.plan),
                        }
                        for v in sorted(entry.versions.values(), key=lambda v: -v.mtime)
                    ],
                }
            )
        return out


def _match(versions: Mapping[str, PlanVersion], key: str) -> str | None:
    hexpart = key.strip().lower().split(":", 1)[-1]
    if len(hexpart) < 4:
        return None
    found = [v for v in versions if v.split(":", 1)[-1].startswith(hexpart)]
    return found[0] if len(found) == 1 else None


def input_schema(plan: Plan) -> dict[str, Any]:
    """JSON Schema of a plan's inputs (every input required)."""
    return {
        "type": "object",
        "properties": {name: {"type": kind} for name, kind in plan.inputs.items()},
        "required": list(plan.inputs),
        "additionalProperties": False,
    }


def output_schema(plan: Plan) -> dict[str, Any]:
    """JSON Schema of a plan's outputs, with the types the producing nodes declare."""
    props: dict[str, Any] = {}
    for name, ref in plan.outputs.items():
        source, _, fieldname = ref.partition(".")
        schema: dict[str, Any] = {"description": f"from {ref}"}
        try:
            node = plan.node(source)
            node_schema = getattr(node, "output_schema", None)
            if node_schema is None and getattr(node, "of", None):
                node_schema = getattr(plan.node(node.of), "output_schema", None)  # type: ignore[union-attr]
            sub = (node_schema or {}).get("properties", {}).get(fieldname)
            if isinstance(sub, dict) and "type" in sub:
                schema["type"] = sub["type"]
        except KeyError:
            pass
        props[name] = schema
    return {"type": "object", "properties": props, "required": list(plan.outputs)}
