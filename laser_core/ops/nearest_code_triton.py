"""Nearest-code search as one Triton kernel: fused distance and argmin, no (N, K) tensor.

Each program takes ``BLOCK_N`` vectors and walks the codebook ``BLOCK_K`` codes at a time: it
scores a tile as ||c||² - 2 x·c with ``tl.dot`` in fp32 (accumulated over ``BLOCK_D`` features
at a time, so any dimension fits in registers), takes the tile's argmin and keeps it where it
is strictly below the running minimum, so among equal scores the lowest index wins, as in
``torch.argmin``. Only the N indices are written to memory.

Import this module only after setting ``TRITON_INTERPRET=1`` when running it on the CPU.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK_N = 64
BLOCK_K = 64
ONE_TILE_DIM = 64
"""Vectors of at most this dimension are loaded once per program; longer ones are read
``SPLIT_BLOCK_D`` features at a time for every tile of ``SPLIT_BLOCK_K`` codes."""
SPLIT_BLOCK_D = 16
SPLIT_BLOCK_K = 32
NUM_WARPS = 8
"""With these tile sizes ptxas reports no register spills on sm_80 and sm_90 for either case
(``tests/ops/test_triton_aot.py``); they are not yet tuned on a GPU."""

SIGNATURE = {
    "vectors_ptr": "*fp32",
    "codebook_ptr": "*fp32",
    "squared_norms_ptr": "*fp32",
    "indices_ptr": "*i64",
    "count": "i32",
    "dim": "i32",
    "size": "i32",
}
"""Argument types of ``_nearest_code_kernel`` for ahead-of-time compilation (the constexprs
come from ``launch_config``)."""


def launch_config(dim: int, size: int) -> dict:
    """The kernel's compile-time parameters, ``num_warps`` included, for vectors of ``dim``
    features and a codebook of ``size`` codes."""
    one_tile = dim <= ONE_TILE_DIM
    return {
        "BLOCK_N": BLOCK_N,
        "BLOCK_K": min(
            BLOCK_K if one_tile else SPLIT_BLOCK_K, max(16, triton.next_power_of_2(size))
        ),
        "BLOCK_D": max(16, triton.next_power_of_2(dim)) if one_tile else SPLIT_BLOCK_D,
        "ONE_D_TILE": one_tile,
        "num_warps": NUM_WARPS,
    }


def triton_nearest_code(vectors: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """``nearest_code`` for fp32 vectors (N, D) and codebook (K, D) on one device."""
    count, dim = vectors.shape
    size = len(codebook)
    vectors, codebook = vectors.contiguous(), codebook.contiguous()
    squared_norms = codebook.square().sum(1)
    indices = torch.empty(count, dtype=torch.long, device=vectors.device)
    _nearest_code_kernel[(triton.cdiv(count, BLOCK_N),)](
        vectors,
        codebook,
        squared_norms,
        indices,
        count,
        dim,
        size,
        **launch_config(dim, size),
    )
    return indices


@triton.jit
def _nearest_code_kernel(
    vectors_ptr,
    codebook_ptr,
    squared_norms_ptr,
    indices_ptr,
    count,
    dim,
    size,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_D: tl.constexpr,
    ONE_D_TILE: tl.constexpr,
):
    rows = tl.program_id(0).to(tl.int64) * BLOCK_N + tl.arange(0, BLOCK_N)
    row_ok = rows < count
    features = tl.arange(0, BLOCK_D)
    vector_rows = vectors_ptr + rows * dim  # int64 offsets: N·D may pass 2³¹
    if ONE_D_TILE:  # the whole vectors stay in registers for every code tile
        x = tl.load(
            vector_rows[:, None] + features[None, :],
            mask=row_ok[:, None] & (features[None, :] < dim),
            other=0.0,
        )
    best = tl.full((BLOCK_N,), float("inf"), dtype=tl.float32)
    best_index = tl.zeros((BLOCK_N,), dtype=tl.int64)
    for start in range(0, size, BLOCK_K):
        codes = start + tl.arange(0, BLOCK_K)
        code_ok = codes < size
        code_rows = codebook_ptr + codes.to(tl.int64) * dim
        if ONE_D_TILE:
            tile = tl.load(  # (BLOCK_D, BLOCK_K): codes as columns
                code_rows[None, :] + features[:, None],
                mask=(features[:, None] < dim) & code_ok[None, :],
                other=0.0,
            )
            products = tl.dot(x, tile, input_precision="ieee")
        else:
            products = tl.zeros((BLOCK_N, BLOCK_K), dtype=tl.float32)
            for offset in range(0, dim, BLOCK_D):
                part = offset + features
                x = tl.load(
                    vector_rows[:, None] + part[None, :],
                    mask=row_ok[:, None] & (part[None, :] < dim),
                    other=0.0,
                )
                tile = tl.load(
                    code_rows[None, :] + part[:, None],
                    mask=(part[:, None] < dim) & code_ok[None, :],
                    other=0.0,
                )
                products += tl.dot(x, tile, input_precision="ieee")
        norms = tl.load(squared_norms_ptr + codes, mask=code_ok, other=float("inf"))
        scores = norms[None, :] - 2.0 * products
        tile_best, tile_index = tl.min(
            scores, axis=1, return_indices=True, return_indices_tie_break_left=True
        )
        better = tile_best < best
        best = tl.where(better, tile_best, best)
        best_index = tl.where(better, start + tile_index.to(tl.int64), best_index)
    tl.store(indices_ptr + rows, best_index, mask=row_ok)
