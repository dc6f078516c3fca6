"""Identities of a run's model and of its priors, so that a bitstream is only ever decoded by
the model and the entropy models that wrote it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from laser_core.errors import LaserError
from laser_core.rundir.layout import RunDir

IDENTITY_BYTES = 16
"""A truncated SHA-256: 128 bits tell models apart; the container stores these bytes."""


def digest(*parts: bytes) -> bytes:
    """IDENTITY_BYTES of SHA-256 over ``parts``, each length-prefixed so no two splits of the
    same bytes collide."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(len(part).to_bytes(8, "little"))
        hasher.update(part)
    return hasher.digest()[:IDENTITY_BYTES]


def model_identity(run_dir: Path) -> bytes:
    """The identity of a finished run's model: its resolved recipe and its final weights, as
    stored (a run directory copied elsewhere keeps its identity)."""
    files = [RunDir(run_dir).recipe_yaml, RunDir(run_dir).model_safetensors]
    for needed in files:
        if not needed.is_file():
            raise LaserError(f"{run_dir} is not a finished run directory: {needed.name} is missing")
    return digest(*(path.read_bytes() for path in files))
