"""Batch Orthogonal Matching Pursuit: sparse codes of many signals over one dictionary.

Rubinstein, Zibulevsky & Elad (2008), "Efficient implementation of the K-SVD algorithm using
batch orthogonal matching pursuit". The Gram matrix G = DᵀD is computed once and shared by every
signal. Each selected atom adds one row to the Cholesky factor L of G restricted to the support,
so the coefficients are the exact least-squares fit of the signal over its support, and the
correlations α = Dᵀr are updated through G without forming the residual r.

This module keeps L⁻ᵀ (the coefficients of the orthonormalised support atoms) instead of L: a
new column of L⁻ᵀ is one small matrix-vector product, the coefficients γ = L⁻ᵀ (L⁻¹ Dₛᵀx) grow
by one scaled column of L⁻ᵀ per step without a triangular solve, and the correlations
α = Dᵀx − G_S γ_S are one weighted sum of rows per signal (its α₀ and the support's Gram rows).

Three implementations run these steps. On CUDA, the Triton kernel (``omp_triton``) codes one
signal per program. On the CPU, a compiled C loop (``omp_cpu``) codes one signal at a time
through all its steps. The torch path here serves the rest (CUDA shapes the kernel does not
serve, backend "torch", a CPU without a C compiler): signals are coded in chunks, which bounds
memory; on the CPU each of torch's threads codes whole chunks with single-threaded ops, so no
op waits on a barrier for a busy core. The small per-signal steps run over the whole chunk,
few ops for many signals; the correlations (n, K), the one large buffer, are computed and
searched in blocks that stay in the L2 cache.

Unused slots. A signal stops early when its squared residual norm reaches ``tolerance`` or when
no atom correlates with its residual any more (it is represented exactly, e.g. a zero signal);
a selected atom that lies numerically in the span of the support is dropped, and a signal whose
residual correlates most with an atom already in its support (rounding noise) stops, as in
scikit-learn. Every such slot holds index 0 and value 0, so it adds nothing to ``reconstruct``
and the code keeps its fixed (N, sparsity) shape. Used slots never repeat an atom and hold
non-zero values.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from laser_core.nn.codes import Codes
from laser_core.ops.dispatch import Backend, in_slices, triton_or_torch, use_triton
from laser_core.ops.omp_cpu import cpu_batch_omp
from laser_core.ops.omp_thresholds import DEGENERATE_PIVOT, NEGLIGIBLE_CORRELATION
from laser_core.ops.precision import ieee_fp32

CPU_CHUNK_ELEMENTS = 2**21
"""Signals x atoms per chunk on the CPU: few small ops per signal, and chunks enough for a
thread that other jobs slow down to take fewer of them."""

CPU_BLOCK_ELEMENTS = 2**17
"""Signals x atoms whose correlations are computed and searched at once on the CPU: a block
stays in the L2 cache through its passes."""

GPU_CHUNK_ELEMENTS = 2**26
"""Signals x atoms per chunk elsewhere: bounds the torch path to about 1 GB of buffers."""

TRITON_MAX_DIM = 64
TRITON_MAX_SPARSITY = 16
"""The Triton kernel holds a whole signal and the support's factor in registers; for signals of
more than ``TRITON_MAX_DIM`` features or sparsity above ``TRITON_MAX_SPARSITY`` it would spill
(see ``laser_core.ops.omp_triton``), so backend "auto" runs the torch path there."""


def triton_serves(dim: int, sparsity: int) -> bool:
    """Whether backend "auto" runs the Triton kernel for signals of ``dim`` features."""
    return dim <= TRITON_MAX_DIM and sparsity <= TRITON_MAX_SPARSITY


def batch_omp(
    signals: torch.Tensor,
    dictionary: torch.Tensor,
    sparsity: int,
    tolerance: float | None = None,
    *,
    backend: Backend = "auto",
    chunk_size: int | None = None,
) -> Codes:
    """Sparse codes of ``signals`` (N, M) over ``dictionary`` (M, K) of unit-norm atoms.

    Atoms are selected by raw correlation, as in the paper and scikit-learn, so they should
    have unit norm for the selection to be fair.

    Returns ``Codes`` with ``indices`` (N, sparsity) long and ``values`` (N, sparsity) fp32:
    ``signals[n] ≈ Σ_j values[n, j] * dictionary[:, indices[n, j]]``. At most ``sparsity``
    atoms per signal; with ``tolerance`` a signal also stops once its squared residual norm is
    at most ``tolerance`` (unused slots hold index 0 and value 0, see the module docstring).

    Computes in fp32 whatever the input dtype and any autocast. Not differentiable: the codes
    are a selection. ``backend`` "auto" runs the Triton kernel on CUDA tensors whose shape it
    serves (``triton_serves``), the C loop of ``omp_cpu`` on CPU tensors, and the torch path
    elsewhere; ``chunk_size`` caps how many signals are coded at once. Should the Triton
    kernel fail to compile or launch, a warning names the shape and that shape runs the torch
    path from then on; should the C loop fail to build, one warning says so and CPU tensors
    run the torch path.
    """
    _check_arguments(signals, dictionary, sparsity, tolerance)
    device_type = signals.device.type
    with torch.no_grad(), torch.autocast(device_type, enabled=False), ieee_fp32():
        signals = signals.detach().float()
        dictionary = dictionary.detach().float()
        if not len(signals):
            empty = signals.new_zeros(0, sparsity)
            return Codes(empty.long(), empty)
        _check_finite(signals)
        dim, atoms = dictionary.shape

        def torch_path() -> Codes:
            return _torch_batch_omp(signals, dictionary, sparsity, tolerance, chunk_size)

        if device_type == "cpu" and backend == "auto":
            codes = cpu_batch_omp(signals, dictionary, sparsity, tolerance, chunk_size)
            return torch_path() if codes is None else codes

        if use_triton(backend, signals, "batch_omp") and (
            backend == "triton" or triton_serves(dim, sparsity)
        ):

            def kernel() -> Codes:
                from laser_core.ops.omp_triton import triton_batch_omp

                return triton_batch_omp(signals, dictionary, sparsity, tolerance)

            shape = f"M={dim}, K={atoms}, sparsity={sparsity}"
            return triton_or_torch("batch_omp", shape, kernel, torch_path)
        return torch_path()


def reconstruct(codes: Codes, dictionary: torch.Tensor) -> torch.Tensor:
    """Signals (N, M) that ``codes`` (indices and values (N, depth)) stand for over
    ``dictionary`` (M, K); differentiable with respect to the dictionary and the values."""
    atoms = dictionary.t()
    values = codes.values.to(atoms.dtype)
    return F.embedding_bag(codes.indices, atoms, per_sample_weights=values, mode="sum")


def _check_arguments(
    signals: torch.Tensor, dictionary: torch.Tensor, sparsity: int, tolerance: float | None
) -> None:
    if signals.ndim != 2 or dictionary.ndim != 2 or signals.shape[1] != dictionary.shape[0]:
        raise ValueError(
            f"batch_omp: expected signals (N, M) and dictionary (M, K); got signals "
            f"{tuple(signals.shape)} and dictionary {tuple(dictionary.shape)}"
        )
    dim, atoms = dictionary.shape
    if not 1 <= sparsity <= min(dim, atoms):
        raise ValueError(
            f"batch_omp: sparsity={sparsity} must be between 1 and min(signal dimension M={dim}, "
            f"atoms K={atoms}): OMP cannot select more linearly independent atoms than that"
        )
    if tolerance is not None and tolerance < 0:
        raise ValueError(f"batch_omp: tolerance={tolerance} must be a non-negative squared norm")


def _check_finite(signals: torch.Tensor) -> None:
    """NaN or infinite signals (N >= 1 of them) are an error. An asynchronous assert: it raises
    here on the CPU, and on CUDA fails the stream later instead of making the host wait for the
    answer. The largest and smallest entry are finite exactly when all are (both propagate
    NaN): two reductions, where isfinite would write and read a mask as large as the signals."""
    message = "batch_omp: signals contain NaN or infinite values"
    try:
        torch._assert_async(signals.amax().isfinite() & signals.amin().isfinite(), message)
    except RuntimeError:
        raise ValueError(message) from None


def _torch_batch_omp(
    signals: torch.Tensor,
    dictionary: torch.Tensor,
    sparsity: int,
    tolerance: float | None,
    chunk_size: int | None,
) -> Codes:
    count, atoms = signals.shape[0], dictionary.shape[1]
    on_cpu = signals.device.type == "cpu"
    if chunk_size is None:
        chunk_size = max(1, (CPU_CHUNK_ELEMENTS if on_cpu else GPU_CHUNK_ELEMENTS) // atoms)
        if on_cpu:  # at least one chunk per thread
            chunk_size = min(chunk_size, -(-count // torch.get_num_threads()))
    block_size = max(1, CPU_BLOCK_ELEMENTS // atoms) if on_cpu else chunk_size
    gram = dictionary.t() @ dictionary
    indices = torch.zeros(count, sparsity, dtype=torch.long, device=signals.device)
    values = torch.zeros(count, sparsity, device=signals.device)

    def code(chunks: Iterator[slice]) -> None:
        # The Gram rows, then the chunk's α₀ (see _omp_chunk): one table per thread.
        table = gram.new_empty(atoms + min(chunk_size, count), atoms)
        table[:atoms] = gram
        for rows in chunks:
            indices[rows], values[rows] = _omp_chunk(
                signals[rows], dictionary, table, sparsity, tolerance, block_size
            )

    in_slices(code, count, chunk_size, torch.get_num_threads() if on_cpu else 1)
    return Codes(indices, values)


def _omp_chunk(
    signals: torch.Tensor,
    dictionary: torch.Tensor,
    table: torch.Tensor,
    sparsity: int,
    tolerance: float | None,
    block_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch-OMP of signals (n, M); returns indices and values (n, sparsity).

    ``table`` (at least K + n, K) holds the Gram matrix in its first K rows; the next n rows
    receive each signal's α₀ = Dᵀx, so that one embedding_bag computes the correlations with
    the residual, α = α₀ - G_S γ_S: bag entry 0 is the signal's row of α₀ (weight 1), entry
    1 + j the atom of slot j (weight -γ_j).

    The per-signal state is stored signals last, (slots, n) and (slots, slots, n), so that each
    small step is one elementwise op over contiguous signals rather than many tiny matrices.
    The correlations (n, K) are computed and searched ``block_size`` signals at a time, which
    keeps a block in the CPU's caches through its passes.
    """
    count, atoms = signals.shape[0], table.shape[1]
    device = signals.device
    table = table[: atoms + count]
    gram, initial = table[:atoms], table[atoms:]
    torch.mm(signals, dictionary, out=initial)
    bags = torch.arange(atoms, atoms + count, device=device)[:, None]  # (n, 1 + slot)
    weights = signals.new_zeros(sparsity + 1, count)
    weights[0] = 1.0
    negated_values = weights[1:]
    chosen = torch.zeros(sparsity, count, dtype=torch.long, device=device)
    energy = signals.square().sum(1)  # ‖r‖²
    floor = energy * NEGLIGIBLE_CORRELATION**2
    active = energy > (tolerance if tolerance is not None else 0.0)
    inverse = signals.new_zeros(sparsity, sparsity, count)  # [:t, :t] = L⁻ᵀ of the first t slots
    used = torch.zeros(sparsity, count, dtype=torch.bool, device=device)
    gram_entries, gram_diagonal = gram.reshape(-1), gram.diagonal()
    on_cpu = device.type == "cpu"
    # Where each signal's |α| is largest: the column on CUDA, K + the column on the CPU.
    found = signals.new_empty(count) if on_cpu else chosen.new_empty(count)
    found_blocks = found.split(block_size)
    marks = torch.arange(atoms, 2 * atoms, dtype=signals.dtype, device=device)
    for slot in range(sparsity):
        if slot:
            bags = torch.cat([bags, chosen[slot - 1, :, None]], 1)
        width = slot + 1
        bag_weights = weights[:width].t().contiguous()  # (n, 1 + slot)
        offsets = torch.arange(0, block_size * width, width, device=device)
        for indices, block_weights, block_found in zip(
            bags.view(-1).split(block_size * width),
            bag_weights.view(-1).split(block_size * width),
            found_blocks,
            strict=True,
        ):
            score = F.embedding_bag(
                indices,
                table,
                offsets[: len(block_found)],
                per_sample_weights=block_weights,
                mode="sum",
            )  # α = α₀ - G γ
            _largest(score.abs_(), block_found, marks)
        if on_cpu:
            atom = found.long() - atoms
            tied = atom >= atoms  # several columns hold the largest |α|
            tied &= active
            _first_of_ties(atom, tied, bags, bag_weights, table)
            atom.clamp_(max=atoms - 1)  # inactive rows with ties: any atom
        else:
            atom = found
        chosen[slot] = atom
        support_inverse = inverse[:slot, :slot]
        cross = gram_entries.index_select(0, torch.add(chosen[:slot], atom, alpha=atoms).view(-1))
        cross = cross.view(slot, count)  # G[atom, support]
        correlation = initial.gather(1, atom[:, None]).squeeze(1)
        correlation += torch.linalg.vecdot(cross, negated_values[:slot], dim=0)  # α₀ - G γ
        row = (support_inverse * cross[:, None]).sum(0)  # new Cholesky row L⁻¹ G[support, atom]
        norm = gram_diagonal.index_select(0, atom)
        pivot = norm - torch.linalg.vecdot(row, row, dim=0)  # squared new Cholesky diagonal
        significant = correlation.square() > floor
        take = pivot > DEGENERATE_PIVOT * norm
        take &= significant
        take &= active
        take &= (chosen[:slot] != atom).all(0)  # a support atom's α is rounding noise: stop
        scale = torch.where(take, pivot.rsqrt(), 0.0)  # 1 / new Cholesky diagonal, 0 if dropped
        inverse[:slot, slot].addcmul_((support_inverse * row).sum(1), scale, value=-1.0)
        inverse[slot, slot] = scale
        projection = correlation * scale  # the residual's coordinate on the new direction
        used[slot] = take
        # γ_S += projection · L⁻ᵀ[:, slot]: the least-squares coefficients over the new support
        negated_values[: slot + 1].addcmul_(inverse[: slot + 1, slot], projection, value=-1.0)
        energy.addcmul_(projection, projection, value=-1.0)
        active &= significant
        if tolerance is not None:
            active &= energy > tolerance
    return torch.where(used, chosen, 0).t(), torch.where(used, -negated_values, 0.0).t()


def _first_of_ties(
    atom: torch.Tensor,
    tied: torch.Tensor,
    bags: torch.Tensor,
    bag_weights: torch.Tensor,
    table: torch.Tensor,
) -> None:
    """Set ``atom`` of the ``tied`` signals (rare: duplicated atoms) to argmax |α| of their
    correlations, computed again as in ``_omp_chunk``. CPU tensors only: it reads ``tied``."""
    if tied.any():
        rows = tied.nonzero().squeeze(1)
        score = F.embedding_bag(bags[rows], table, per_sample_weights=bag_weights[rows], mode="sum")
        atom[rows] = score.abs_().argmax(1)


def _largest(score: torch.Tensor, found: torch.Tensor, marks: torch.Tensor) -> None:
    """Write into ``found`` (n,) where each row of ``score`` (n, K) is largest; overwrites
    ``score`` on the CPU.

    On CUDA ``found`` (long) receives argmax. torch's CPU argmax is not vectorised and took
    half of the CPU path's time; there ``found`` (fp32) receives ``marks`` (K, ..., 2K - 1)
    summed over the row's maxima by two vectorised passes (a 0/1 mask of the maxima, one
    matrix-vector product): exactly K + the column of a row's only maximum, more than 2K for
    a row with ties.
    """
    if score.device.type != "cpu":
        torch.argmax(score, 1, out=found)
        return
    score.eq_(score.amax(1, keepdim=True))
    torch.mv(score, marks, out=found)
