"""An llm node's chat messages: its rendered system and prompt, plus the JSON instruction.

:class:`MessageBuilder` renders ``system`` and ``prompt`` over the node's resolved inputs
(:class:`~sgde.runtime.render.PromptRenderer`: jinja2, sandboxed, strict). When the node has
an ``output_schema`` and the backend cannot enforce a JSON schema itself, a short
instruction that names the fields (``prompts/json_instruction.j2``) is appended to the
prompt. The instruction is rendered once per distinct schema.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sgde.plan.model import LlmNode
from sgde.runtime.backend import Capabilities, Message
from sgde.runtime.render import PromptRenderer, load_prompt

__all__ = ["MessageBuilder"]


class MessageBuilder:
    """Builds the messages of llm nodes; keeps the renderer's and the instructions' caches."""

    def __init__(self) -> None:
        self._renderer = PromptRenderer()
        self._instruction_template: str | None = None
        self._instructions: dict[str, str] = {}

    def messages(
        self, node: LlmNode, variables: Mapping[str, Any], caps: Capabilities
    ) -> tuple[Message, ...]:
        """The node's messages: an optional system message, then the user prompt.

        Args:
            node: The llm node.
            variables: Its resolved inputs (the template variables).
            caps: What the backend can do (``json_schema``: no instruction is appended).

        Raises:
            ExecutionError: a template fails to render (names the node and field).
        """
        system = ""
        if node.system:
            system = self._renderer.render(node.system, variables, node_id=node.id, field="system")
        prompt = self._renderer.render(node.prompt, variables, node_id=node.id, field="prompt")
        if node.output_schema is not None and not caps.json_schema:
            prompt = prompt.rstrip() + "\n\n" + self.json_instruction(node.output_schema)
        messages: list[Message] = []
        if system.strip():
            messages.append(Message("system", system))
        messages.append(Message("user", prompt))
        return tuple(messages)

    def json_instruction(self, schema: Mapping[str, Any]) -> str:
        """The instruction that asks for a JSON object with the schema's fields."""
        key = json.dumps(schema, sort_keys=True, ensure_ascii=False)
        cached = self._instructions.get(key)
        if cached is not None:
            return cached
        if self._instruction_template is None:
            self._instruction_template = load_prompt("json_instruction.j2")
        props = schema.get("properties")
        fields = []
        for name, sub in props.items() if isinstance(props, Mapping) else []:
            sub = sub if isinstance(sub, Mapping) else {}
            kind = sub.get("type", "any")
            kind = " or ".join(str(k) for k in kind) if isinstance(kind, list) else str(kind)
            if "enum" in sub and isinstance(sub["enum"], list):
                kind = "one of " + ", ".join(json.dumps(v) for v in sub["enum"])
            fields.append({"name": name, "type": kind, "description": sub.get("description")})
        text = self._renderer.render(
            self._instruction_template,
            {"fields": fields, "schema": json.dumps(schema, ensure_ascii=False)},
            field="json_instruction",
        ).strip()
        self._instructions[key] = text
        return text
