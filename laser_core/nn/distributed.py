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


def gather_rows(tensor: torch.Tensor) -> tuple[torch.Tensor, slice]:
    """The rows of ``tensor`` from every process, concatenated in rank order, and the slice of
    them that is this process's; the row counts may differ between processes. One all-reduce
    of the counts and one all-gather; no-op in one process."""
    if world_size() == 1:
        return tensor, slice(0, len(tensor))
    world, rank = world_size(), dist.get_rank()
    sizes = torch.zeros(world, dtype=torch.long, device=tensor.device)
    sizes[rank] = len(tensor)
    sizes = all_reduce_sum(sizes).tolist()
    padded = tensor.new_zeros(max(sizes), *tensor.shape[1:])
    padded[: len(tensor)] = tensor
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    start = sum(sizes[:rank])
    rows = torch.cat([part[:size] for part, size in zip(parts, sizes, strict=True)])
    return rows, slice(start, start + len(tensor))
