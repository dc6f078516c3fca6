"""Replacement atoms for a dictionary: the directions its current codes represent worst.

K-SVD re-initialises atoms no signal uses, and the dictionary bottlenecks revive dead atoms, from
the residuals of the worst-represented signals. The choice must be identical on every process,
so rank 0's candidates are broadcast to all of them.
"""

from __future__ import annotations

import torch

from laser_core.nn.distributed import broadcast_from_main


def replacement_directions(
    residuals: torch.Tensor, count: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit-norm residuals (count, M) of the ``count`` signals with the largest residual norm
    among ``residuals`` (N, M), worst first, the same on every process (rank 0's), and which of
    them are valid (count,) bool: a prefix, short of ``count`` where residuals are zero or
    N < count. Fixed shapes, so the host never waits for the device."""
    norms = residuals.float().square().sum(1)
    take = min(count, residuals.shape[0])
    candidates = torch.zeros(count, residuals.shape[1] + 1, device=residuals.device)
    if take:
        worst = norms.topk(take).indices
        candidates[:take, :-1] = residuals[worst].float()
        candidates[:take, -1] = norms[worst]
    broadcast_from_main(candidates)
    valid = candidates[:, -1] > 0
    norm = torch.where(valid, candidates[:, -1], 1.0).sqrt()
    return candidates[:, :-1] / norm[:, None], valid


def worst_represented_directions(residuals: torch.Tensor, count: int) -> torch.Tensor:
    """The valid rows (r, M) of :func:`replacement_directions`, ``r <= count``."""
    if count == 0:  # the same on every process, so no rank waits on a broadcast
        return residuals.new_zeros(0, residuals.shape[1])
    directions, valid = replacement_directions(residuals, count)
    return directions[valid]
