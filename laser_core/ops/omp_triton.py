"""Batch OMP as one Triton kernel: a tile of signals stays on chip for every selection step.

Each program codes ``BLOCK_N`` signals. Per step it recomputes their correlations with all atoms
from the residual, ``tl.dot(residual, atoms)`` one ``BLOCK_K`` tile at a time, and keeps only the
running best atom, so no (N, K) correlation tensor is ever written to memory. The Cholesky
bookkeeping is the torch path's (``laser_core.ops.omp``): L⁻ᵀ of the Gram matrix over the support
grows by one column per step from the shared Gram matrix, the residual moves along the new
orthonormalised direction, and the coefficients are L⁻ᵀ L⁻¹ Dᵀx over the support at the end,
with the same rules for early stops, dropped atoms and unused slots.

The whole signal (``BLOCK_M`` features) and the support's L⁻ᵀ stay in registers, so the kernel
serves signals of at most ``MAX_BLOCK_M`` features and sparsity up to ``MAX_SLOTS``: the shapes
that compile with no register spills and well within shared memory on sm_80 and sm_90
(``tests/ops/test_triton_aot.py``, table in docs/benchmarks.md). ``batch_omp`` routes larger
shapes to the torch path, whose Gram-based updates cost less there anyway. Offsets into the
signals and codes are int64, so N·M ≥ 2³¹ is safe.

Import this module only after setting ``TRITON_INTERPRET=1`` when running it on the CPU.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from laser_core.nn.codes import Codes
from laser_core.ops.omp_thresholds import DEGENERATE_PIVOT, NEGLIGIBLE_CORRELATION

BLOCK_N = 16
BLOCK_K = 64
MAX_BLOCK_M = 64
MAX_SLOTS = 16
NUM_WARPS = 8
"""At 4 warps M = 64 already spills; 8 warps hold every served shape in registers."""

SIGNATURE = {
    "signals_ptr": "*fp32",
    "atom_rows_ptr": "*fp32",
    "gram_ptr": "*fp32",
    "indices_ptr": "*i32",
    "values_ptr": "*fp32",
    "count": "i32",
    "dim": "i32",
    "atoms": "i32",
    "tolerance": "fp32",
    "negligible": "fp32",
    "degenerate": "fp32",
}
"""Argument types of ``_batch_omp_kernel`` for ahead-of-time compilation (the constexprs come
from ``launch_config``)."""


def launch_config(dim: int, atoms: int, sparsity: int, tolerance: float | None) -> dict:
    """The kernel's compile-time parameters, ``num_warps`` included, for signals of ``dim``
    features coded with ``sparsity`` of ``atoms`` atoms."""
    return {
        "HAS_TOLERANCE": tolerance is not None,
        "SPARSITY": sparsity,
        "SLOTS": triton.next_power_of_2(sparsity),
        "BLOCK_N": BLOCK_N,
        "BLOCK_M": max(16, triton.next_power_of_2(dim)),
        "BLOCK_K": min(BLOCK_K, max(16, triton.next_power_of_2(atoms))),
        "num_warps": NUM_WARPS,
    }


def triton_batch_omp(
    signals: torch.Tensor, dictionary: torch.Tensor, sparsity: int, tolerance: float | None
) -> Codes:
    """``batch_omp`` for fp32 signals (N, M) and dictionary (M, K) on one device."""
    count, dim = signals.shape
    atoms = dictionary.shape[1]
    signals = signals.contiguous()
    atom_rows = dictionary.t().contiguous()  # (K, M): one atom per row
    gram = atom_rows @ atom_rows.t()
    indices = torch.empty(count, sparsity, dtype=torch.int32, device=signals.device)
    values = torch.empty(count, sparsity, device=signals.device)
    _batch_omp_kernel[(triton.cdiv(count, BLOCK_N),)](
        signals,
        atom_rows,
        gram,
        indices,
        values,
        count,
        dim,
        atoms,
        tolerance if tolerance is not None else 0.0,
        NEGLIGIBLE_CORRELATION**2,
        DEGENERATE_PIVOT,
        **launch_config(dim, atoms, sparsity, tolerance),
    )
    return Codes(indices.long(), values)


@triton.jit
def _column(matrix, slots, j):
    """matrix[:, j] of a (BLOCK_N, SLOTS) register tile, as (BLOCK_N,)."""
    return tl.sum(tl.where(slots[None, :] == j, matrix, 0), axis=1)


@triton.jit
def _batch_omp_kernel(
    signals_ptr,
    atom_rows_ptr,
    gram_ptr,
    indices_ptr,
    values_ptr,
    count,
    dim,
    atoms,
    tolerance,
    negligible,
    degenerate,
    HAS_TOLERANCE: tl.constexpr,
    SPARSITY: tl.constexpr,
    SLOTS: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < count
    features = tl.arange(0, BLOCK_M)
    feature_ok = features < dim
    slots = tl.arange(0, SLOTS)
    signal_mask = row_ok[:, None] & feature_ok[None, :]
    residual = tl.load(
        signals_ptr + rows[:, None] * dim + features[None, :], mask=signal_mask, other=0.0
    ).to(tl.float32)
    energy = tl.sum(residual * residual, axis=1)
    floor = energy * negligible
    active = row_ok & (energy > tolerance)
    inverse = tl.zeros((BLOCK_N, SLOTS, SLOTS), dtype=tl.float32)  # L⁻ᵀ over the support
    projections = tl.zeros((BLOCK_N, SLOTS), dtype=tl.float32)  # L⁻¹ Dᵀx over the support
    chosen = tl.full((BLOCK_N, SLOTS), -1, dtype=tl.int32)
    used = tl.zeros((BLOCK_N, SLOTS), dtype=tl.int32)
    for slot in range(SPARSITY):
        # Best atom by |correlation| with the residual, tile by tile.
        best = tl.full((BLOCK_N,), -1.0, dtype=tl.float32)
        atom = tl.zeros((BLOCK_N,), dtype=tl.int32)
        correlation = tl.zeros((BLOCK_N,), dtype=tl.float32)
        for start in range(0, atoms, BLOCK_K):
            candidates = start + tl.arange(0, BLOCK_K)
            tile = tl.load(
                atom_rows_ptr + candidates.to(tl.int64)[None, :] * dim + features[:, None],
                mask=feature_ok[:, None] & (candidates[None, :] < atoms),
                other=0.0,
            )
            tile_correlations = tl.dot(residual, tile, input_precision="ieee")
            score = tl.abs(tile_correlations)
            score = tl.where(candidates[None, :] < atoms, score, -1.0)
            for j in range(slot):
                taken = _column(chosen, slots, j)
                score = tl.where(candidates[None, :] == taken[:, None], -1.0, score)
            tile_best = tl.max(score, axis=1)
            tile_atom = start + tl.argmax(score, axis=1)
            tile_correlation = tl.sum(
                tl.where(candidates[None, :] == tile_atom[:, None], tile_correlations, 0.0), axis=1
            )
            better = tile_best > best
            best = tl.where(better, tile_best, best)
            atom = tl.where(better, tile_atom, atom)
            correlation = tl.where(better, tile_correlation, correlation)
        # New Cholesky row from the shared Gram matrix, as in the torch path.
        cross = tl.zeros((BLOCK_N, SLOTS), dtype=tl.float32)
        for j in range(slot):
            taken = _column(chosen, slots, j)
            entry = tl.load(gram_ptr + taken.to(tl.int64) * atoms + atom, mask=row_ok, other=0.0)
            cross = tl.where(slots[None, :] == j, entry[:, None], cross)
        atom_norm = tl.load(gram_ptr + atom.to(tl.int64) * (atoms + 1), mask=row_ok, other=0.0)
        row = tl.sum(inverse * cross[:, :, None], axis=1)
        pivot = atom_norm - tl.sum(row * row, axis=1)
        significant = correlation * correlation > floor
        take = active & significant & (pivot > degenerate * atom_norm)
        diagonal = tl.sqrt(tl.where(take, pivot, 1.0))
        scale = tl.where(take, 1.0 / diagonal, 0.0)
        support_row = tl.sum(inverse * row[:, None, :], axis=2)
        column = tl.where(slots[None, :] == slot, scale[:, None], -support_row * scale[:, None])
        inverse = tl.where(slots[None, None, :] == slot, column[:, :, None], inverse)
        projection = correlation * scale
        projections = tl.where(slots[None, :] == slot, projection[:, None], projections)
        chosen = tl.where(slots[None, :] == slot, atom[:, None], chosen)
        used = tl.where(slots[None, :] == slot, take.to(tl.int32)[:, None], used)
        # Residual along the new orthonormal direction q = Σ_j column_j · atom_j.
        direction = tl.zeros((BLOCK_N, BLOCK_M), dtype=tl.float32)
        for j in range(slot + 1):
            taken = _column(chosen, slots, j)
            weight = _column(column, slots, j)
            atom_row = tl.load(
                atom_rows_ptr + taken.to(tl.int64)[:, None] * dim + features[None, :],
                mask=signal_mask,
                other=0.0,
            )
            direction += weight[:, None] * atom_row
        residual -= projection[:, None] * direction
        energy -= projection * projection
        active = active & significant
        if HAS_TOLERANCE:
            active = active & (energy > tolerance)
    coefficients = tl.sum(inverse * projections[:, None, :], axis=2)
    keep = used != 0
    out = rows[:, None] * SPARSITY + slots[None, :]
    out_mask = row_ok[:, None] & (slots[None, :] < SPARSITY)
    tl.store(indices_ptr + out, tl.where(keep, chosen, 0), mask=out_mask)
    tl.store(values_ptr + out, tl.where(keep, coefficients, 0.0), mask=out_mask)
