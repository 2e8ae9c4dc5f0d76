"""Edit operators: the directions a semantic gradient can point."""

from sgde.optimize.operators.base import Candidate, EditFailure, Variant
from sgde.optimize.operators.consensus import wrap_consensus
from sgde.optimize.operators.offload import offload, offload_target
from sgde.optimize.operators.rewrite_prompt import rewrite_prompt
from sgde.optimize.operators.topology import (
    change_topology,
    prune_unused,
    split_node,
    unwrap_consensus,
)

__all__ = [
    "Candidate",
    "EditFailure",
    "Variant",
    "change_topology",
    "offload",
    "offload_target",
    "prune_unused",
    "rewrite_prompt",
    "split_node",
    "unwrap_consensus",
    "wrap_consensus",
]
