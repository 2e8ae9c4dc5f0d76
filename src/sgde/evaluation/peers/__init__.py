"""Real peers side by side: prompt optimisers we did not write, run from their own packages.

``dspy-gepa`` (DSPy's GEPA, with ``dspy.Flex`` where the installed DSPy has it),
``dspy-mipro`` (DSPy's MIPROv2) and ``textgrad`` (TextGrad's textual gradient descent) each run
in an isolated, cached virtual environment (:mod:`.venv`), against the same GGUF models as
sgde served by ``llama_cpp.server`` on 127.0.0.1 (:mod:`.servers`), behind a metering proxy
that counts every call and enforces the bench's token budget (:mod:`.proxy`). The peer
program is ``scripts/peer_worker.py``, run with the venv's interpreter and spoken to in JSON
lines (:mod:`.protocol`, :mod:`.session`). :class:`~.method.PeerMethod` makes each a bench
method. See docs/peers.md.
"""

from __future__ import annotations

from sgde.evaluation.peers.method import PEERS_MISSING, PeerMethod, peer_factory
from sgde.evaluation.peers.protocol import CompileReply, Endpoint, PeerJob, PredictReply
from sgde.evaluation.peers.proxy import BUDGET_MESSAGE, Meter, MeteringProxy
from sgde.evaluation.peers.servers import LlamaServer
from sgde.evaluation.peers.session import PeerRun, PeerSession, run_peer_job, worker_script
from sgde.evaluation.peers.specs import PEERS, PeerSpec, VenvSpec, get_peer
from sgde.evaluation.peers.venv import PeerVenv, default_peers_dir, ensure_venv

__all__ = [
    "BUDGET_MESSAGE",
    "PEERS",
    "PEERS_MISSING",
    "CompileReply",
    "Endpoint",
    "LlamaServer",
    "Meter",
    "MeteringProxy",
    "PeerJob",
    "PeerMethod",
    "PeerRun",
    "PeerSession",
    "PeerSpec",
    "PeerVenv",
    "PredictReply",
    "VenvSpec",
    "default_peers_dir",
    "ensure_venv",
    "get_peer",
    "peer_factory",
    "run_peer_job",
    "worker_script",
]
