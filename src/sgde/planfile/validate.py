"""Plan validation: every rule a plan must satisfy before it runs.

:func:`validate_plan` returns all problems (it never stops at the first); each names the
node id, the field and, when a :class:`~sgde.planfile.sourcemap.SourceMap` is given, the line.
The rules are listed in ``docs/plan-format.md`` ("Validation").
"""

from __future__ import annotations

import difflib
import keyword
import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import jsonschema

from sgde.errors import PlanError, Problem
from sgde.plan.codeinfo import CodeInfo, analyse_code
from sgde.plan.graph import find_cycles, node_fields
from sgde.plan.model import CodeNode, ConsensusNode, LlmNode, Plan
from sgde.plan.refs import INPUT, parse_ref
from sgde.planfile.sourcemap import SourceMap, YamlPath
from sgde.planfile.templates import check_template

__all__ = ["CodePolicy", "PolicyFinding", "check_plan", "validate_plan"]


class PolicyFinding(Protocol):
    """One refusal of a code policy (e.g. ``sgde.runtime.sandbox.policy.PolicyViolation``)."""

    @property
    def rule(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def line(self) -> int | None: ...


CodePolicy = Callable[[str], Iterable[PolicyFinding]]
"""Checks code-node source (called with the source; the entry is ``run``). The sandbox's
policy lives in the runtime layer: pass ``sgde.runtime.sandbox.policy.check_source``."""

AnyNode = LlmNode | CodeNode | ConsensusNode


def validate_plan(
    plan: Plan, *, source_map: SourceMap | None = None, code_policy: CodePolicy | None = None
) -> list[Problem]:
    """Check a plan against every validation rule.

    Args:
        plan: The plan (already parsed).
        source_map: Where each value came from (from :func:`~sgde.planfile.parse_plan`); without
            it problems carry no line numbers.
        code_policy: Also check every code node against this policy (the sandbox's
            ``check_source``); without it code is checked for syntax and signature only.

    Returns:
        All problems, ordered by line (then file order); empty when the plan is valid.
    """
    problems = _Validator(plan, source_map, code_policy).run()
    return sorted(problems, key=lambda p: (p.line is None, p.line or 0))


def check_plan(
    plan: Plan,
    *,
    source_map: SourceMap | None = None,
    source: str | None = None,
    code_policy: CodePolicy | None = None,
) -> None:
    """Validate (see :func:`validate_plan`) and raise when the plan has any problem.

    Raises:
        PlanError: listing every problem.
    """
    problems = validate_plan(plan, source_map=source_map, code_policy=code_policy)
    if problems:
        n = len(problems)
        raise PlanError(
            f"plan '{plan.name}' is invalid ({n} problem{'s' if n != 1 else ''})",
            problems=problems,
            path=source,
        )


def _is_name(text: str) -> bool:
    return text.isidentifier() and not keyword.iskeyword(text)


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"; did you mean '{close[0]}'?" if close else ""


def _listing(names: Iterable[str]) -> str:
    items = list(names)
    return ", ".join(items) if items else "none"


class _Validator:
    """One validation pass over one plan (holds the plan and its source map)."""

    def __init__(
        self, plan: Plan, source_map: SourceMap | None, code_policy: CodePolicy | None = None
    ) -> None:
        self.plan = plan
        self.smap = source_map
        self.code_policy = code_policy
        self.problems: list[Problem] = []
        self.index: dict[str, int] = {}
        for i, node in enumerate(plan.nodes):
            self.index.setdefault(node.id, i)
        self.fields: dict[str, list[str] | None] = {}
        self.wrapper: dict[str, str] = {}
        for node in plan.nodes:
            if isinstance(node, ConsensusNode) and node.of != node.id:
                self.wrapper.setdefault(node.of, node.id)

    # -- helpers ---------------------------------------------------------------------------

    def line(self, *path: str | int) -> int | None:
        return self.smap.line(*path) if self.smap is not None else None

    def text_line(self, path: YamlPath, offset: int | None) -> int | None:
        if self.smap is None:
            return None
        return self.smap.text_line(path, offset or 1)

    def add(
        self,
        message: str,
        *,
        node: str | None = None,
        field: str | None = None,
        line: int | None = None,
    ) -> None:
        self.problems.append(Problem(message, node_id=node, field=field, line=line))

    # -- rules -----------------------------------------------------------------------------

    def run(self) -> list[Problem]:
        self.check_plan_inputs()
        self.check_ids()
        for i, node in enumerate(self.plan.nodes):
            self.check_node_inputs(i, node)
            if isinstance(node, LlmNode):
                self.check_llm(i, node)
            elif isinstance(node, CodeNode):
                self.check_code(i, node)
            else:
                self.check_consensus(i, node)
        self.check_outputs()
        self.check_cycles()
        return self.problems

    def check_plan_inputs(self) -> None:
        for name in self.plan.inputs:
            if not _is_name(name):
                self.add(
                    f"plan input name {name!r} cannot be referenced as 'input.<name>'; "
                    "use letters, digits and '_' (not starting with a digit)",
                    field=f"inputs.{name}",
                    line=self.line("inputs", name),
                )

    def check_ids(self) -> None:
        for i, node in enumerate(self.plan.nodes):
            first = self.index[node.id]
            if first != i:
                where = self.line("nodes", first)
                at = f" (first at line {where})" if where is not None else ""
                self.add(
                    f"duplicate node id '{node.id}'{at}; node ids must be unique",
                    node=node.id,
                    field="id",
                    line=self.line("nodes", i, "id"),
                )
            if node.id == INPUT:
                self.add(
                    "node id 'input' is reserved for plan inputs ('input.<name>'); rename it",
                    node=node.id,
                    field="id",
                    line=self.line("nodes", i, "id"),
                )

    def check_ref(self, text: str, *, node: str | None, field: str, line: int | None) -> None:
        """One reference: syntax, its source and its field."""
        try:
            ref = parse_ref(text)
        except ValueError as exc:
            self.add(str(exc), node=node, field=field, line=line)
            return
        if ref.is_input:
            if ref.field not in self.plan.inputs:
                self.add(
                    f"reference '{text}' names unknown plan input '{ref.field}'"
                    f"{_suggest(ref.field, self.plan.inputs)} "
                    f"(plan inputs: {_listing(self.plan.inputs)})",
                    node=node,
                    field=field,
                    line=line,
                )
            return
        if ref.source not in self.index:
            self.add(
                f"reference '{text}' names unknown node '{ref.source}'"
                f"{_suggest(ref.source, self.index)}",
                node=node,
                field=field,
                line=line,
            )
            return
        wrapper = self.wrapper.get(ref.source)
        if wrapper is not None:
            self.add(
                f"reference '{text}' reads node '{ref.source}', which is wrapped by consensus "
                f"node '{wrapper}' and never runs on its own; use '{wrapper}.{ref.field}'",
                node=node,
                field=field,
                line=line,
            )
            return
        if ref.source not in self.fields:
            self.fields[ref.source] = node_fields(self.plan, ref.source)
        fields = self.fields[ref.source]
        # An empty list means an output_schema without properties, reported on its own.
        if fields and ref.field not in fields:
            source = self.plan.node(ref.source)
            extra = ""
            if isinstance(source, LlmNode) and source.output_schema is None:
                extra = "; an llm node without output_schema yields only 'text'"
            self.add(
                f"reference '{text}': node '{ref.source}' has no field '{ref.field}'"
                f"{_suggest(ref.field, fields)} (fields: {_listing(fields)}){extra}",
                node=node,
                field=field,
                line=line,
            )

    def check_node_inputs(self, i: int, node: AnyNode) -> None:
        if isinstance(node, ConsensusNode):
            return
        for param, ref_text in node.inputs.items():
            line = self.line("nodes", i, "inputs", param)
            if not _is_name(param):
                self.add(
                    f"input parameter name {param!r} is not a valid identifier "
                    "(it becomes a template variable / a keyword argument of run)",
                    node=node.id,
                    field=f"inputs.{param}",
                    line=line,
                )
            self.check_ref(ref_text, node=node.id, field=f"inputs.{param}", line=line)

    def check_llm(self, i: int, node: LlmNode) -> None:
        if not node.prompt.strip():
            self.add(
                "prompt is empty",
                node=node.id,
                field="prompt",
                line=self.line("nodes", i, "prompt"),
            )
        for field in ("system", "prompt"):
            text: str = getattr(node, field)
            path: YamlPath = ("nodes", i, field)
            result = check_template(text)
            if result.error is not None:
                self.add(
                    result.error,
                    node=node.id,
                    field=field,
                    line=self.text_line(path, result.error_line),
                )
                continue
            for name in sorted(result.variables - set(node.inputs)):
                self.add(
                    f"template variable '{name}' is not an input of this node"
                    f"{_suggest(name, node.inputs)} (inputs: {_listing(node.inputs)}); "
                    f"add it to inputs or remove it from the {field}",
                    node=node.id,
                    field=field,
                    line=self.text_line(path, _first_line_with(text, name)),
                )
        if node.output_schema is not None:
            self.check_output_schema(i, node.id, node.output_schema)

    def check_output_schema(self, i: int, node_id: str, schema: dict[str, Any]) -> None:
        line = self.line("nodes", i, "output_schema")

        def add(message: str) -> None:
            self.add(message, node=node_id, field="output_schema", line=line)

        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as exc:
            where = f" at {exc.json_path}" if list(exc.path) else ""
            add(f"not a valid JSON Schema (draft 2020-12){where}: {exc.message}")
            return
        if schema.get("type") != "object":
            add("must have `type: object`; its properties are the node's output fields")
            return
        props = schema.get("properties")
        if not isinstance(props, dict) or not props:
            add(
                "needs `properties` naming at least one output field, e.g. {answer: {type: number}}"
            )
            return
        for name in props:
            if not _is_name(name):
                add(
                    f"property {name!r} cannot be referenced as '<node>.<field>'; "
                    "use letters, digits and '_'"
                )
        required = schema.get("required", [])
        for name in required:
            if name not in props:
                add(f"`required` lists '{name}', which is not in `properties`")

    def check_code(self, i: int, node: CodeNode) -> None:
        path: YamlPath = ("nodes", i, "code")
        info = analyse_code(node.code)
        if info.syntax_error is not None:
            self.add(
                info.syntax_error,
                node=node.id,
                field="code",
                line=self.text_line(path, info.syntax_error_line),
            )
            return
        if info.entry is None:
            self.add(
                "code must define a top-level function `def run(...)` that returns a dict",
                node=node.id,
                field="code",
                line=self.line(*path),
            )
        else:
            self.check_signature(i, node, info)
        self.check_policy(i, node, info)
        if node.outputs is not None:
            self.check_declared_outputs(i, node, info)

    def check_signature(self, i: int, node: CodeNode, info: CodeInfo) -> None:
        entry = info.entry
        if entry is None:
            return
        def_line = self.text_line(("nodes", i, "code"), entry.line)
        if entry.is_async:
            self.add(
                "run must be a plain `def`, not `async def`",
                node=node.id,
                field="code",
                line=def_line,
            )
        for name in entry.positional_only:
            self.add(
                f"parameter '{name}' of run is positional-only, but inputs are passed by "
                "keyword; remove the '/'",
                node=node.id,
                field="code",
                line=def_line,
            )
        for name in entry.required:
            if name not in node.inputs:
                self.add(
                    f"run requires parameter '{name}', but the node has no input '{name}'; "
                    f"add `{name}: <reference>` to its inputs",
                    node=node.id,
                    field="inputs",
                    line=self.line("nodes", i, "inputs") or def_line,
                )
        if entry.var_keyword:
            return
        signature = ", ".join(entry.params)
        for name in node.inputs:
            if name not in entry.params and name not in entry.positional_only:
                self.add(
                    f"input '{name}' is not a parameter of run({signature})"
                    f"{_suggest(name, entry.params)}",
                    node=node.id,
                    field=f"inputs.{name}",
                    line=self.line("nodes", i, "inputs", name),
                )

    def check_policy(self, i: int, node: CodeNode, info: CodeInfo) -> None:
        if self.code_policy is None:
            return
        path: YamlPath = ("nodes", i, "code")
        entry = info.entry
        async_line = entry.line if entry is not None and entry.is_async else None
        for violation in self.code_policy(node.code):
            # Skip what check_code already reported in its own words.
            if violation.rule == "syntax-error" and info.syntax_error is not None:
                continue
            if violation.rule == "missing-entry" and (entry is None or entry.is_async):
                continue
            if violation.rule == "unsupported-syntax" and violation.line == async_line:
                continue
            self.add(
                f"the sandbox policy refuses this code [{violation.rule}]: {violation.message}",
                node=node.id,
                field="code",
                line=self.text_line(path, violation.line),
            )

    def check_declared_outputs(self, i: int, node: CodeNode, info: CodeInfo) -> None:
        declared = node.outputs or []
        line = self.line("nodes", i, "outputs")
        if not declared:
            self.add(
                "outputs is empty; list the fields run returns, or omit it to infer them",
                node=node.id,
                field="outputs",
                line=line,
            )
        seen: set[str] = set()
        for name in declared:
            if name in seen:
                self.add(
                    f"output field '{name}' is listed twice",
                    node=node.id,
                    field="outputs",
                    line=line,
                )
            seen.add(name)
            if not _is_name(name):
                self.add(
                    f"output field {name!r} cannot be referenced as '<node>.<field>'; "
                    "use letters, digits and '_'",
                    node=node.id,
                    field="outputs",
                    line=line,
                )
            elif info.fields is not None and name not in info.fields:
                self.add(
                    f"outputs declares '{name}', but run never returns it "
                    f"(its return dicts have: {_listing(info.fields)})",
                    node=node.id,
                    field="outputs",
                    line=line,
                )

    def check_consensus(self, i: int, node: ConsensusNode) -> None:
        line = self.line("nodes", i, "of")
        if node.of == node.id:
            self.add("a consensus node cannot wrap itself", node=node.id, field="of", line=line)
            return
        if node.of not in self.index:
            self.add(
                f"'of' names unknown node '{node.of}'{_suggest(node.of, self.index)}",
                node=node.id,
                field="of",
                line=line,
            )
            return
        target = self.plan.node(node.of)
        if isinstance(target, CodeNode):
            self.add(
                f"'{node.of}' is a code node; code is deterministic, so consensus over it "
                "only repeats the same result; wrap an llm node instead",
                node=node.id,
                field="of",
                line=line,
            )
        elif isinstance(target, ConsensusNode):
            self.add(
                f"'{node.of}' is itself a consensus node; wrap the llm node directly and "
                "raise n instead",
                node=node.id,
                field="of",
                line=line,
            )
        elif node.members:
            self.check_grounded(i, node, target)
            self.check_members(i, node, target)
        else:
            self.check_grounded(i, node, target)
            temperature = target.temperature if node.temperature is None else node.temperature
            if temperature == 0:
                self.add(
                    "consensus samples at temperature 0 would repeat one answer n times; "
                    "set this node's temperature above 0 (e.g. 0.7)",
                    node=node.id,
                    field="temperature",
                    line=self.line("nodes", i, "temperature") or line,
                )
        first = self.wrapper.get(node.of)
        if first is not None and first != node.id:
            self.add(
                f"node '{node.of}' is already wrapped by consensus node '{first}'; "
                "a node can be wrapped by one consensus node only",
                node=node.id,
                field="of",
                line=line,
            )

    def check_grounded(self, i: int, node: ConsensusNode, target: LlmNode) -> None:
        """Grounded fields are fields of the wrapped node, each named once."""
        fields = node_fields(self.plan, target.id) or []
        for k, name in enumerate(node.grounded):
            if name not in fields or name in node.grounded[:k]:
                why = (
                    "is named twice"
                    if name in fields
                    else (f"is not a field of '{target.id}' (fields: {_listing(fields)})")
                )
                self.add(
                    f"grounded field '{name}' {why}; list each field the wrapped node copies "
                    "from its text inputs once",
                    node=node.id,
                    field=f"grounded[{k}]",
                    line=self.line("nodes", i, "grounded", k) or self.line("nodes", i),
                )

    def check_members(self, i: int, node: ConsensusNode, target: LlmNode) -> None:
        """Prompt-variant members: one per sample, unique names, templates over the wrapped
        node's inputs, and not all the same question at temperature 0."""
        line = self.line("nodes", i, "members") or self.line("nodes", i)
        if node.n != len(node.members):
            self.add(
                f"n is {node.n} but {len(node.members)} members are listed; each member is "
                f"one sample, so set n: {len(node.members)}",
                node=node.id,
                field="n",
                line=self.line("nodes", i, "n") or line,
            )
        seen: set[str] = set()
        asked: set[tuple[str, str, float]] = set()
        base = target.temperature if node.temperature is None else node.temperature
        for k, member in enumerate(node.members):
            where = f"members[{k}]"
            if member.name in seen:
                self.add(
                    f"member name '{member.name}' is used twice; give each member its own name",
                    node=node.id,
                    field=f"{where}.name",
                    line=self.line("nodes", i, "members", k, "name") or line,
                )
            seen.add(member.name)
            for field in ("system", "prompt"):
                text = getattr(member, field)
                if text is None:
                    continue
                result = check_template(text)
                unknown = sorted(result.variables - set(target.inputs))
                if result.error is not None or unknown:
                    problem = result.error or (
                        f"template variable '{unknown[0]}' is not an input of '{target.id}' "
                        f"(inputs: {_listing(target.inputs)}); a member asks with the "
                        "wrapped node's inputs"
                    )
                    self.add(
                        problem,
                        node=node.id,
                        field=f"{where}.{field}",
                        line=self.line("nodes", i, "members", k, field) or line,
                    )
            temperature = base if member.temperature is None else member.temperature
            system = target.system if member.system is None else member.system
            prompt = target.prompt if member.prompt is None else member.prompt
            asked.add((system, prompt, temperature))
        if len(asked) == 1 and next(iter(asked))[2] == 0:
            self.add(
                "every member asks the same prompt at temperature 0, so the vote would repeat "
                "one answer; give members different prompts or a temperature above 0",
                node=node.id,
                field="members",
                line=line,
            )

    def check_outputs(self) -> None:
        if not self.plan.outputs:
            self.add(
                "the plan declares no outputs; add `outputs: {name: <node>.<field>}`",
                field="outputs",
                line=self.line("outputs") or self.line(),
            )
        for name, ref_text in self.plan.outputs.items():
            line = self.line("outputs", name)
            if not name.strip():
                self.add("output name is empty", field="outputs", line=line)
            self.check_ref(ref_text, node=None, field=f"outputs.{name}", line=line)

    def check_cycles(self) -> None:
        for cycle in find_cycles(self.plan):
            start = cycle[0]
            i = self.index[start]
            node = self.plan.nodes[i]
            if isinstance(node, ConsensusNode) and cycle == [node.of]:
                continue  # a consensus node wrapping itself is reported by check_consensus
            field = "of" if isinstance(node, ConsensusNode) else "inputs"
            text = " -> ".join([*cycle, start])
            self.add(
                f"dependency cycle {text} (each node needs the next one's output)",
                node=start,
                field=field,
                line=self.line("nodes", i, field),
            )


def _first_line_with(text: str, name: str) -> int:
    """1-based line of the first whole-word occurrence of ``name`` in ``text`` (else 1)."""
    pattern = re.compile(rf"\b{re.escape(name)}\b")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.search(line):
            return number
    return 1
