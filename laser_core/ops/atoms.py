"""Replacement atoms for a dictionary: the directions its current codes represent worst.

K-SVD re-initialises atoms no signal uses, and the dictionary bottlenecks revive dead atoms, from
the residuals of the worst-represented signals. The choice must be identical on every process,
so rank 0's candidates are broadcast to all of them.
"""

from __future__ import annotations

import torch

from laser_core.nn.distributed import broadcast_from_main


def worst_represented_directions(residuals: torch.Tensor, count: int) -> torch.Tensor:
    """Unit-norm residuals (r, M) of the ``count`` signals with the largest residual norm among
    ``residuals`` (N, M), the same on every process (rank 0's). ``r <= count``: residuals that
    are zero, or missing because N < count, give no direction."""
    if count == 0:  # the same on every process, so no rank waits on a broadcast
        return residuals.new_zeros(0, residuals.shape[1])
    norms = residuals.square().sum(1)
    take = min(count, residuals.shape[0])
    candidates = torch.zeros(count, residuals.shape[1] + 1, device=residuals.device)
    if take:
        worst = norms.topk(take).indices
        candidates[:take, :-1] = residuals[worst].float()
        candidates[:take, -1] = norms[worst].float()
    broadcast_from_main(candidates)
    found = candidates[candidates[:, -1] > 0]
    return found[:, :-1] / found[:, -1:].sqrt()
