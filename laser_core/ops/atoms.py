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


def reinitialise_atoms(
    atom_rows: torch.Tensor, chosen: torch.Tensor, residuals: torch.Tensor
) -> torch.Tensor:
    """Replace, in place, the atoms (rows of ``atom_rows`` (K, M)) marked in ``chosen`` (K,)
    bool, the i-th chosen atom by the i-th worst-represented direction of ``residuals`` (N, M);
    return which atoms were replaced (K,) bool: ``chosen`` less those left without a direction
    (zero residuals, or fewer signals than chosen atoms). Fixed shapes: the host never waits to
    learn how many atoms were chosen."""
    directions, valid = replacement_directions(residuals, atom_rows.shape[0])
    order = (chosen.long().cumsum(0) - 1).clamp(min=0)  # each chosen atom's rank among them
    replaced = chosen & valid[order]
    replacement = directions[order].to(atom_rows.dtype)
    atom_rows.copy_(torch.where(replaced[:, None], replacement, atom_rows))
    return replaced
