"""K-SVD dictionary learning: alternate Batch-OMP codes with one sweep of rank-1 atom updates.

Aharon, Elad & Bruckstein (2006) update each atom with the leading singular pair of the error
restricted to the signals that use it; Rubinstein, Zibulevsky & Elad (2008) replace the SVD with
one power step started from the current coefficients ("approximate K-SVD"). For atom k with
signals I (non-zero coefficient, of either sign), coefficients g and restricted error
E = X_I - Σ_{j≠k} d_j γ_j,I:

    d_k = E g / ‖E g‖          g = Eᵀ d_k

Each step minimises ‖E - d gᵀ‖ over d with g fixed, then over g with d fixed, so no atom update
raises the representation error of the codes it starts from. Atoms are updated in order and the
residual follows every update (Gauss-Seidel), as in the paper.

Across processes, each rank holds its own signals and codes; the only shared quantity of an atom
update is E g, a vector of M numbers, so it is all-reduced (with the count of signals using the
atom) before d_k is formed. Every rank then computes the same atom from the same sum, and the
result equals a single process running on all ranks' signals. Atoms that no signal on any rank
uses are re-initialised from the worst-represented signals (rank 0's, see
``laser_core.ops.atoms``). The input dictionary must already be the same on every rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from laser_core.nn.distributed import all_reduce_sum
from laser_core.ops.atoms import worst_represented_directions
from laser_core.ops.omp import Backend, batch_omp, reconstruct
from laser_core.plugin.contracts import Codes


@dataclass
class KSVDResult:
    """dictionary (M, K) of unit-norm atoms; codes of the signals over it, their coefficients
    updated with the atoms; replaced: long (r,), atoms re-initialised because unused."""

    dictionary: torch.Tensor
    codes: Codes
    replaced: torch.Tensor


def ksvd(
    signals: torch.Tensor,
    dictionary: torch.Tensor,
    sparsity: int,
    iterations: int = 1,
    *,
    tolerance: float | None = None,
    codes: Codes | None = None,
    backend: Backend = "auto",
) -> KSVDResult:
    """``iterations`` rounds of Batch-OMP coding of ``signals`` (N, M) followed by
    ``ksvd_update`` of ``dictionary`` (M, K). ``codes``, when given, are the current codes of
    the signals over ``dictionary`` and replace the first round's coding."""
    if iterations < 1:
        raise ValueError(f"ksvd: iterations={iterations} must be at least 1")
    replaced = []
    for iteration in range(iterations):
        if codes is None or iteration > 0:
            codes = batch_omp(signals, dictionary, sparsity, tolerance, backend=backend)
        result = ksvd_update(signals, dictionary, codes)
        dictionary, codes = result.dictionary, result.codes
        replaced.append(result.replaced)
    return KSVDResult(dictionary, codes, torch.cat(replaced).unique())


def ksvd_update(signals: torch.Tensor, dictionary: torch.Tensor, codes: Codes) -> KSVDResult:
    """One approximate K-SVD sweep over every atom of ``dictionary`` (M, K), given the codes
    (indices and values (N, depth)) of ``signals`` (N, M). Runs in fp32 without autograd."""
    with torch.no_grad(), torch.autocast(signals.device.type, enabled=False):
        signals = signals.detach().float()
        atom_rows = dictionary.detach().float().t().contiguous()  # (K, M), updated in place
        indices = codes.indices.clone()
        values = codes.values.detach().float().clone()
        residual = signals - reconstruct(Codes(indices, values), atom_rows.t())
        unused = _sweep(atom_rows, indices, values, residual)
        replaced = torch.tensor(unused, dtype=torch.long, device=signals.device)
        directions = worst_represented_directions(residual, len(unused))
        replaced = replaced[: directions.shape[0]]
        atom_rows[replaced] = directions
        indices = torch.where(values != 0, indices, 0)
    return KSVDResult(atom_rows.t().contiguous(), Codes(indices, values), replaced)


def _sweep(
    atom_rows: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, residual: torch.Tensor
) -> list[int]:
    """Update every used atom (rows of ``atom_rows``), its coefficients in ``values`` and the
    ``residual`` in place; return the atoms no signal on any process uses."""
    atoms, dim = atom_rows.shape
    depth = indices.shape[1]
    flat_indices, flat_values = indices.view(-1), values.view(-1)
    entries = (flat_values != 0).nonzero().squeeze(1)
    entries = entries[torch.argsort(flat_indices[entries], stable=True)]
    counts = torch.bincount(flat_indices[entries], minlength=atoms)
    starts = (counts.cumsum(0) - counts).tolist()
    counts = counts.tolist()
    unused = []
    for atom in range(atoms):
        slots = entries[starts[atom] : starts[atom] + counts[atom]]
        members = slots // depth  # each signal uses an atom at most once
        coefficients = flat_values[slots]
        error = residual[members] + coefficients[:, None] * atom_rows[atom]  # Eᵀ, (|I|, M)
        shared = torch.cat([coefficients @ error, coefficients.new_full((1,), counts[atom])])
        all_reduce_sum(shared)  # [E g summed over processes, signals using the atom]
        direction, users = shared[:dim], shared[dim].item()
        norm = direction.norm()
        if users == 0:
            unused.append(atom)
            continue
        if norm == 0:
            continue
        direction /= norm
        coefficients = error @ direction
        residual[members] = error - coefficients[:, None] * direction
        flat_values[slots] = coefficients
        atom_rows[atom] = direction
    return unused
