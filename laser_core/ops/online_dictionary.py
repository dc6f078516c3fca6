"""Online dictionary learning (Mairal, Bach, Ponce & Sapiro 2009): closed-form atom updates
from accumulated code statistics instead of gradients.

With A = Σ γγᵀ (K, K) and B = Σ xγᵀ (M, K) summed over the signals seen so far, the dictionary
minimises the surrogate ½ tr(DᵀDA) - tr(DᵀB) one atom at a time (block-coordinate descent):

    u_j = d_j + (b_j - D a_j) / A_jj,        d_j = u_j / ‖u_j‖

The paper projects u_j onto the unit ball. Here atoms stay on the unit sphere, which OMP's
selection by correlation assumes; on the sphere the A_jj‖d_j‖² term is constant, the surrogate
is linear in d_j, and u_j normalised is its exact minimiser, so each atom update still lowers
the surrogate. The statistics are sums, so summing them over processes before the update gives
every rank the dictionary of all ranks' signals.
"""

from __future__ import annotations

import torch

from laser_core.plugin.contracts import Codes


def code_statistics(
    signals: torch.Tensor, codes: Codes, atoms: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A = Σ γγᵀ (atoms, atoms) and B = Σ xγᵀ (M, atoms) of ``signals`` (N, M) with sparse
    ``codes`` (N, depth), accumulated from the non-zero coefficients only; fp32."""
    signals = signals.detach().float()
    indices, values = codes.indices, codes.values.detach().float()
    depth = indices.shape[1]
    products = torch.zeros(atoms, atoms, device=signals.device)
    rows = indices[:, :, None].expand(-1, depth, depth)
    cols = indices[:, None, :].expand(-1, depth, depth)
    products.index_put_((rows, cols), values[:, :, None] * values[:, None, :], accumulate=True)
    correlations = torch.zeros(atoms, signals.shape[1], device=signals.device)
    weighted = values[:, :, None] * signals[:, None, :]  # (N, depth, M)
    correlations.index_add_(0, indices.reshape(-1), weighted.reshape(-1, signals.shape[1]))
    return products, correlations.t()


def online_dictionary_update(
    dictionary: torch.Tensor, products: torch.Tensor, correlations: torch.Tensor
) -> torch.Tensor:
    """One block-coordinate sweep over the atoms of ``dictionary`` (M, K) given A =
    ``products`` (K, K) and B = ``correlations`` (M, K); returns the new (M, K) dictionary.
    Atoms with A_jj = 0 (unused since the statistics were reset) are left unchanged."""
    atom_rows = dictionary.detach().float().t().contiguous()  # (K, M)
    targets = correlations.float().t()
    usage = products.diagonal().tolist()
    for atom, weight in enumerate(usage):
        if weight <= 0:
            continue
        step = atom_rows[atom] + (targets[atom] - products[atom] @ atom_rows) / weight
        norm = step.norm()
        atom_rows[atom] = torch.where(norm > 0, step / norm, atom_rows[atom])
    return atom_rows.t().contiguous()
