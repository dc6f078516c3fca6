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

from laser_core.nn.codes import Codes
from laser_core.ops.graphs import run_sweep
from laser_core.ops.precision import ieee_fp32

CHUNK_ELEMENTS = 2**24
"""Signals x features per chunk of ``code_statistics``: at most 64 MiB of weighted signals."""


def code_statistics(
    signals: torch.Tensor, codes: Codes, atoms: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """A = Σ γγᵀ (atoms, atoms) and B = Σ xγᵀ (M, atoms) of ``signals`` (N, M) with sparse
    ``codes`` (N, depth), accumulated from the non-zero coefficients only; fp32. Works through
    the signals in chunks, one code slot at a time, so no (N, depth, M) tensor is formed."""
    signals = signals.detach().float()
    indices, values = codes.indices, codes.values.detach().float()
    count, dim = signals.shape
    depth = indices.shape[1]
    products = torch.zeros(atoms, atoms, device=signals.device)
    correlations = torch.zeros(atoms, dim, device=signals.device)
    chunk = max(1, CHUNK_ELEMENTS // max(dim, depth * depth))
    for start in range(0, count, chunk):
        rows = slice(start, start + chunk)
        chunk_indices, chunk_values = indices[rows], values[rows]
        products.index_put_(
            (
                chunk_indices[:, :, None].expand(-1, -1, depth),
                chunk_indices[:, None, :].expand(-1, depth, -1),
            ),
            chunk_values[:, :, None] * chunk_values[:, None, :],
            accumulate=True,
        )
        for slot in range(depth):
            correlations.index_add_(
                0, chunk_indices[:, slot], signals[rows] * chunk_values[:, slot, None]
            )
    return products, correlations.t()


def online_dictionary_update(
    dictionary: torch.Tensor, products: torch.Tensor, correlations: torch.Tensor
) -> torch.Tensor:
    """One block-coordinate sweep over the atoms of ``dictionary`` (M, K) given A =
    ``products`` (K, K) and B = ``correlations`` (M, K); returns the new (M, K) dictionary.
    Atoms with A_jj = 0 (unused since the statistics were reset) are left unchanged.

    Each atom's update depends on the atoms before it, so the sweep is a loop over atoms of a
    few kernels each, which never waits on the device (the skip of unused atoms is a
    ``torch.where``, not a branch on a value read back); on CUDA it runs as one captured graph
    (``laser_core.ops.graphs``)."""
    with torch.no_grad(), ieee_fp32():
        atom_rows = dictionary.detach().float().t().contiguous()  # (K, M)
        targets = correlations.float().t().contiguous()
        run_sweep(_update_atoms, atom_rows, targets, products.float().contiguous())
    return atom_rows.t().contiguous()


def _update_atoms(atom_rows: torch.Tensor, targets: torch.Tensor, products: torch.Tensor) -> None:
    """The block-coordinate sweep, in place on ``atom_rows`` (K, M)."""
    usage = products.diagonal()
    for atom in range(atom_rows.shape[0]):
        weight = usage[atom]
        step = atom_rows[atom] + (targets[atom] - products[atom] @ atom_rows) / weight
        norm = step.norm()
        atom_rows[atom] = torch.where((weight > 0) & (norm > 0), step / norm, atom_rows[atom])
