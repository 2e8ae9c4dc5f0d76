"""The execution-plan IR: pure data, no I/O, no models.

A :class:`Plan` is a DAG of nodes. Node kinds:

* :class:`LlmNode` — one student (or other role) call.
* :class:`CodeNode` — deterministic Python ``run(**inputs) -> dict``, run in the sandbox.
* :class:`ConsensusNode` — fans out the node named in ``of`` ``n`` times and votes per field;
  its samples differ by seed and temperature, or (``members``) each asks with its own prompt.

References (values of ``inputs`` and ``outputs``) are strings ``"input.<name>"`` or
``"<node_id>.<field>"``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SCHEMA_VERSION",
    "CodeNode",
    "ConsensusMember",
    "ConsensusNode",
    "InputType",
    "LlmNode",
    "Node",
    "Plan",
]

SCHEMA_VERSION = 1

InputType = Literal["string", "number", "integer", "boolean", "object", "array"]


class _NodeBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Unique node id.")
    description: str | None = Field(default=None, description="What this node does.")
    timeout_s: float | None = Field(
        default=None, gt=0, description="Per-attempt timeout in seconds (executor default)."
    )
    retries: int = Field(default=0, ge=0, le=10, description="Extra attempts after a failure.")


class LlmNode(_NodeBase):
    """One model call: system prompt + jinja2 user template over named inputs."""

    kind: Literal["llm"] = "llm"
    model: str = Field(default="student", description="Role bound to a concrete model at run time.")
    inputs: dict[str, str] = Field(default_factory=dict, description="parameter -> reference")
    system: str = Field(default="", description="System prompt.")
    prompt: str = Field(description="jinja2 template over the node's inputs.")
    output_schema: dict[str, Any] | None = Field(
        default=None,
        description="JSON schema (type object) of the output; absent -> free text in <id>.text",
    )
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int = Field(default=256, gt=0, le=32768)

    def fields(self) -> list[str]:
        """Output field names this node yields."""
        if self.output_schema is None:
            return ["text"]
        props = self.output_schema.get("properties", {})
        return list(props) if isinstance(props, dict) else []


class CodeNode(_NodeBase):
    """Deterministic Python. ``code`` defines ``run(**inputs)`` returning a dict."""

    kind: Literal["code"] = "code"
    inputs: dict[str, str] = Field(default_factory=dict, description="parameter -> reference")
    code: str = Field(description="Python source defining run(...) -> dict.")
    outputs: list[str] | None = Field(
        default=None,
        description="Declared output fields; inferred from `return {...}` literals when absent.",
    )


class ConsensusMember(BaseModel):
    """One member of a consensus fan-out: the wrapped node asked in its own words.

    Members that differ in their prompt err less alike than samples of one prompt (which
    mostly repeat the model's bias), so their vote can correct more. Inputs, output schema
    and model stay the wrapped node's.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$", description="What sets this member apart."
    )
    system: str | None = Field(
        default=None, description="System prompt instead of the wrapped node's (None: keep it)."
    )
    prompt: str | None = Field(
        default=None,
        description="jinja2 user template instead of the wrapped node's, over the same inputs "
        "(None: keep it).",
    )
    temperature: float | None = Field(
        default=None,
        ge=0.0,
        le=2.0,
        description="This member's sampling temperature (None: the consensus node's).",
    )


class ConsensusNode(_NodeBase):
    """Fan out node ``of`` ``n`` times, fan in by deterministic per-field majority."""

    kind: Literal["consensus"] = "consensus"
    of: str = Field(description="Id of the node to sample; it is not also run on its own.")
    n: int = Field(default=5, ge=2, le=64)
    temperature: float | None = Field(
        default=0.7, ge=0.0, le=2.0, description="Sampling temperature for the fan-out."
    )
    vote: Literal["majority"] = "majority"
    members: list[ConsensusMember] = Field(
        default_factory=list,
        description="Prompt-variant members, one per sample (then n = len(members)); empty: "
        "n samples of the wrapped node's own prompt.",
    )
    grounded: list[str] = Field(
        default_factory=list,
        description="Fields the wrapped node copies from its text inputs: a sample's value "
        "counts in the vote of such a field only when it occurs in those texts (a copy that "
        "is not in the text is a misread); when no sample's value occurs, all count.",
    )


Node = Annotated[LlmNode | CodeNode | ConsensusNode, Field(discriminator="kind")]


class Plan(BaseModel):
    """An execution plan (format v1). Immutable; edit with ``model_copy(update=...)``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = 1
    name: str = Field(min_length=1)
    description: str | None = None
    inputs: dict[str, InputType] = Field(default_factory=dict)
    outputs: dict[str, str] = Field(default_factory=dict, description="name -> reference")
    nodes: list[Node] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Provenance and compile history; preserved verbatim."
    )

    def node(self, node_id: str) -> LlmNode | CodeNode | ConsensusNode:
        """Return the node with this id (KeyError if absent)."""
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def node_ids(self) -> list[str]:
        return [n.id for n in self.nodes]

    def wrapped_ids(self) -> set[str]:
        """Ids of nodes wrapped by a consensus node (not run on their own)."""
        return {n.of for n in self.nodes if isinstance(n, ConsensusNode)}
