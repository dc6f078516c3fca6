"""Nearest-code search: for each vector, the index of the closest row of a codebook.

The squared distance ||x - c||² = ||x||² - 2 x·c + ||c||² has the same argmin over c as
||c||² - 2 x·c, one matrix product and a bias. Neither path holds the (N, K) distance matrix:

- torch: blocks of vectors, each scored by one ``addmm`` into a reused (rows, K) buffer small
  enough to stay in cache and reduced to its argmin there. On the CPU each of torch's threads
  takes whole blocks (see :func:`laser_core.ops.dispatch.in_threads`).
- Triton (CUDA): one kernel; each program keeps a tile of vectors on chip, scores code tiles
  with ``tl.dot`` and keeps a running minimum and its index (``nearest_code_triton``).

Both compute in fp32 whatever the input dtype and any autocast: a bf16 distance cannot tell
close codes apart. Among equal distances the lowest index wins, as in ``torch.argmin``; two
codes whose distances differ only by rounding may be told apart differently from a brute-force
``torch.cdist(...).argmin(1)``, which sums in another order.
"""

from __future__ import annotations

import torch

from laser_core.ops.dispatch import Backend, in_threads, triton_or_torch, use_triton
from laser_core.ops.precision import ieee_fp32

CPU_CHUNK_ELEMENTS = 2**18
"""Vectors x codes per scored block on the CPU: a 1 MiB buffer that stays in the L2 cache
between the matrix product that writes it and the argmin that reads it."""

GPU_CHUNK_ELEMENTS = 2**26
"""Vectors x codes per block of the torch path elsewhere: at most 256 MiB of scores."""

ARGMIN_GROUP = 64
"""Codes per group in :func:`first_argmin`."""


def nearest_code(
    vectors: torch.Tensor,
    codebook: torch.Tensor,
    *,
    backend: Backend = "auto",
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Index (N,) long of the nearest row of ``codebook`` (K, D), in Euclidean distance, for
    each row of ``vectors`` (N, D).

    Not differentiable (indices are a selection) and computed in fp32. ``backend`` "auto" runs
    the Triton kernel on CUDA tensors and the torch path elsewhere (and, should the kernel fail
    to compile or launch, on that shape from then on, with a warning); ``chunk_size`` caps how
    many vectors the torch path scores at once.
    """
    if vectors.ndim != 2 or codebook.ndim != 2 or vectors.shape[1] != codebook.shape[1]:
        raise ValueError(
            f"nearest_code: expected vectors (N, D) and codebook (K, D); got vectors "
            f"{tuple(vectors.shape)} and codebook {tuple(codebook.shape)}"
        )
    if len(codebook) == 0:
        raise ValueError("nearest_code: the codebook has no codes")
    device_type = vectors.device.type
    with torch.no_grad(), torch.autocast(device_type, enabled=False), ieee_fp32():
        vectors, codebook = vectors.detach().float(), codebook.detach().float()
        if len(vectors) == 0:
            return torch.zeros(0, dtype=torch.long, device=vectors.device)

        def torch_path() -> torch.Tensor:
            return _torch_nearest_code(vectors, codebook, chunk_size)

        if use_triton(backend, vectors, "nearest_code"):

            def kernel() -> torch.Tensor:
                from laser_core.ops.nearest_code_triton import triton_nearest_code

                return triton_nearest_code(vectors, codebook)

            shape = f"D={codebook.shape[1]}, K={len(codebook)}"
            return triton_or_torch("nearest_code", shape, kernel, torch_path)
        return torch_path()


def first_argmin(scores: torch.Tensor) -> torch.Tensor:
    """``scores.argmin(1)`` for scores (n, K): the first index of each row's minimum.

    On the CPU, torch's min over a row is vectorised and its argmin is not, so with K a multiple
    of ``ARGMIN_GROUP`` this takes the minimum of each group of columns, the argmin over those
    group minima, then the argmin inside the winning group: the same index, in about half the
    time at K = 512.
    """
    count, size = scores.shape
    if scores.device.type != "cpu" or size % ARGMIN_GROUP or size == ARGMIN_GROUP:
        return scores.argmin(1)
    groups = scores.view(count, size // ARGMIN_GROUP, ARGMIN_GROUP)
    group = groups.amin(2).argmin(1)
    within = groups[torch.arange(count, device=scores.device), group].argmin(1)
    return group * ARGMIN_GROUP + within


def _torch_nearest_code(
    vectors: torch.Tensor, codebook: torch.Tensor, chunk_size: int | None
) -> torch.Tensor:
    count, size = len(vectors), len(codebook)
    on_cpu = vectors.device.type == "cpu"
    if chunk_size is None:
        chunk_size = max(1, (CPU_CHUNK_ELEMENTS if on_cpu else GPU_CHUNK_ELEMENTS) // size)
    codes_t = codebook.t()
    squared_norms = codebook.square().sum(1)
    indices = torch.empty(count, dtype=torch.long, device=vectors.device)

    def search(chunks: list[slice]) -> None:
        scores = vectors.new_empty(min(chunk_size, count), size)
        for rows in chunks:
            block = vectors[rows]
            block_scores = scores[: len(block)]
            torch.addmm(squared_norms, block, codes_t, alpha=-2, out=block_scores)
            indices[rows] = first_argmin(block_scores)

    chunks = [slice(start, start + chunk_size) for start in range(0, count, chunk_size)]
    workers = min(torch.get_num_threads(), len(chunks)) if on_cpu else 1
    if workers == 1:
        search(chunks)
    else:
        in_threads(search, [chunks[k::workers] for k in range(workers)])
    return indices
