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

Across processes, each rank holds its own signals and codes. An atom's update depends on the
residuals left by every earlier atom that shares a signal with it, on any rank, so the sweep
cannot be split into per-rank sums without one collective per atom. Instead each sweep gathers
the residuals and codes of every rank once (``gather_rows``: one small all-reduce of the row
counts and one all-gather), every rank runs the same sweep over all signals, and keeps the
coefficients of its own: the result is a single process running on all ranks' signals, and the
sweep itself waits on nothing. Atoms that no signal uses are re-initialised from the
worst-represented signals (see ``laser_core.ops.atoms``). The input dictionary must already be
the same on every rank.

The sweep reads one number back: the most signals any atom has, the width of the table of each
atom's signals, which is built on the device. Inside the loop over atoms every step has that one
shape and nothing waits on the device (an atom whose direction vanishes keeps its value through
``torch.where``), so on CUDA the loop runs as one captured graph (``laser_core.ops.graphs``);
the unused atoms are found and replaced as a mask over atoms, in fixed shapes as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from laser_core.nn.codes import Codes
from laser_core.nn.distributed import gather_rows
from laser_core.ops.atoms import reinitialise_atoms
from laser_core.ops.graphs import run_sweep
from laser_core.ops.omp import Backend, batch_omp, reconstruct
from laser_core.ops.precision import ieee_fp32


@dataclass
class KSVDResult:
    """dictionary (M, K) of unit-norm atoms; codes of the signals over it, their coefficients
    updated with the atoms; replaced: bool (K,), the atoms re-initialised because unused."""

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
    return KSVDResult(dictionary, codes, torch.stack(replaced).any(0))


def ksvd_update(signals: torch.Tensor, dictionary: torch.Tensor, codes: Codes) -> KSVDResult:
    """One approximate K-SVD sweep over every atom of ``dictionary`` (M, K), given the codes
    (indices and values (N, depth)) of ``signals`` (N, M). Runs in IEEE fp32 without autograd."""
    with torch.no_grad(), torch.autocast(signals.device.type, enabled=False), ieee_fp32():
        signals = signals.detach().float()
        atom_rows = dictionary.detach().float().t().contiguous()  # (K, M), updated in place
        values = codes.values.detach().float()
        residual = signals - reconstruct(Codes(codes.indices, values), atom_rows.t())
        depth, dim = values.shape[1], signals.shape[1]
        # Every rank's residuals and codes, in one gather; indices < 2^24 are exact in fp32.
        everything, mine = gather_rows(torch.cat([residual, values, codes.indices.float()], 1))
        residual = everything[:, :dim].contiguous()
        values = everything[:, dim : dim + depth].contiguous()
        indices = everything[:, dim + depth :].long()
        unused = _sweep(atom_rows, indices, values, residual)
        replaced = reinitialise_atoms(atom_rows, unused, residual)
        indices, values = indices[mine], values[mine]
        indices = torch.where(values != 0, indices, 0)
    return KSVDResult(atom_rows.t().contiguous(), Codes(indices, values), replaced)


def _sweep(
    atom_rows: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, residual: torch.Tensor
) -> torch.Tensor:
    """Update every used atom (rows of ``atom_rows``), its coefficients in ``values`` and the
    ``residual`` in place, in order; return which atoms (bool (K,)) no signal uses."""
    atoms, dim = atom_rows.shape
    depth = indices.shape[1]
    flat_indices, flat_values = indices.reshape(-1), values.view(-1)
    owners = torch.where(flat_values != 0, flat_indices, atoms)  # unused slots: no atom
    counts = torch.zeros(atoms + 1, dtype=torch.long, device=indices.device)
    counts.index_add_(0, owners, torch.ones_like(owners))
    counts = counts[:atoms]
    widest = int(counts.max())  # the sweep's one read-back: how wide the table must be
    table = _slot_table(owners, atoms, _table_width(widest, atom_rows.is_cuda))
    # Table padding points at an extra slot whose coefficient is 0 and whose signal is an extra
    # zero residual row: padded entries change nothing, so every atom's step has one shape.
    padded_values = torch.cat([flat_values, flat_values.new_zeros(1)])
    padded_residual = torch.cat([residual, residual.new_zeros(1, dim)])
    run_sweep(_update_atoms, atom_rows, table, padded_values, padded_residual, depth=depth)
    flat_values.copy_(padded_values[:-1])
    residual.copy_(padded_residual[:-1])
    return counts == 0


def _table_width(widest: int, captured: bool) -> int:
    """The table's width: the most slots any atom has; rounded up to a power of two where the
    sweep is captured as a CUDA graph, so a few graphs serve every step."""
    return max(1, 1 << (widest - 1).bit_length()) if captured else max(1, widest)


def _slot_table(owners: torch.Tensor, atoms: int, width: int) -> torch.Tensor:
    """(atoms, width) long: row k lists the flat code slots that use atom k, in slot order,
    padded with the index one past the last slot."""
    slots = owners.numel()
    order = torch.argsort(owners, stable=True)
    sorted_owners = owners[order]
    first = torch.searchsorted(sorted_owners, sorted_owners, right=False)
    column = torch.arange(slots, device=owners.device) - first
    # Slots of no atom go to one spare cell past the table (their columns may exceed width).
    cell = torch.where(sorted_owners < atoms, sorted_owners * width + column, atoms * width)
    table = torch.full((atoms * width + 1,), slots, dtype=torch.long, device=owners.device)
    table[cell] = order
    return table[:-1].view(atoms, width)


def _update_atoms(
    atom_rows: torch.Tensor,
    table: torch.Tensor,
    values: torch.Tensor,
    residual: torch.Tensor,
    *,
    depth: int,
) -> None:
    """The Gauss-Seidel sweep over the atoms, in place, in fixed shapes that wait on nothing:
    an atom whose direction vanishes (or that no signal uses) keeps its value through
    ``torch.where``; each signal uses an atom at most once, so its slots' signals differ."""
    for atom in range(atom_rows.shape[0]):
        slots = table[atom]
        members = slots // depth
        coefficients = values[slots]
        error = residual[members].addr_(coefficients, atom_rows[atom])  # Eᵀ, (width, M)
        direction = coefficients @ error
        norm = direction.norm()
        moves = norm > 0
        direction = torch.where(moves, direction / norm, atom_rows[atom])
        coefficients = torch.where(moves, error @ direction, coefficients)
        residual[members] = error.addr_(coefficients, direction, alpha=-1)
        values[slots] = coefficients
        atom_rows[atom] = direction
