"""Test-wide setup: passive OpenMP so llama.cpp processes don't spin against each other."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
