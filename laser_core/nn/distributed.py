"""Keeping non-gradient state identical on every process.

EMA codebooks, k-means initialisation, dead-code revival and K-SVD update buffers outside
autograd, so DDP does not synchronise them; these helpers do, and are no-ops in one process.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over processes in place and return it."""
    if world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_from_main(tensor: torch.Tensor) -> torch.Tensor:
    """Overwrite ``tensor`` with rank 0's copy, for choices drawn at random (k-means seeds,
    revived codes) that must not differ between processes."""
    if world_size() > 1:
        dist.broadcast(tensor, src=0)
    return tensor
