"""k-means and cluster statistics, shared by the codebook bottlenecks (vq, rq).

Both run in fp32 whatever autocast is active: a bf16 distance cannot tell close codes apart.
Neither makes the host wait on the device: counts are ``index_add_`` into zeros, not
``bincount`` (which reads min and max back), and seeds are drawn by inverse transform sampling,
not ``multinomial`` (which checks its input with an ``item``).
"""

from __future__ import annotations

import torch

from laser_core.nn.distributed import all_reduce_sum, broadcast_from_main
from laser_core.ops.nearest_code import nearest_code


def kmeans(
    x: torch.Tensor, k: int, iterations: int = 10, generator: torch.Generator | None = None
) -> torch.Tensor:
    """``k`` centroids (k, D), fp32, of the rows of ``x`` (N, D): k-means++ seeds refined by
    ``iterations`` Lloyd steps. A centroid that loses all its points keeps its place.

    Over several processes each passes its own rows; the seeds are rank 0's and the cluster
    sums are all-reduced, so every process returns the same centroids. With fewer rows than
    ``k`` some seeds repeat a row. ``generator`` (on x's device) makes the seeds reproducible.
    """
    with torch.autocast(device_type=x.device.type, enabled=False):
        x = x.detach().float()
        centroids = broadcast_from_main(_kmeans_plus_plus(x, k, generator))
        for _ in range(iterations):
            counts, sums = cluster_statistics(x, nearest_code(x, centroids), k)
            counts = counts.unsqueeze(1)
            centroids = torch.where(counts > 0, sums / counts.clamp(min=1), centroids)
        return centroids


def cluster_statistics(
    x: torch.Tensor, indices: torch.Tensor, k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Size (k,) and sum (k, D) of each of k clusters of the rows of ``x`` (N, D) assigned by
    ``indices`` (N,), summed over processes; index_add_ keeps memory at O(k D), not O(N k)
    (and runs about twice as fast into a contiguous tensor as into a column slice)."""
    sums = torch.zeros(k, x.shape[1], device=x.device).index_add_(0, indices, x.float())
    counts = sums.new_zeros(k).index_add_(0, indices, sums.new_ones(len(indices)))
    stats = all_reduce_sum(torch.cat([counts.unsqueeze(1), sums], dim=1))  # one all-reduce
    return stats[:, 0], stats[:, 1:]


def _kmeans_plus_plus(x: torch.Tensor, k: int, generator: torch.Generator | None) -> torch.Tensor:
    """Seeds drawn with probability proportional to the squared distance to the seeds so far;
    uniformly once every row coincides with a seed."""
    centroids = x.new_empty(k, x.shape[1])
    first = torch.randint(len(x), (1,), generator=generator, device=x.device)
    centroids[:1] = x[first]
    squared_distances = (x - centroids[0]).square().sum(1)
    for i in range(1, k):
        weights = torch.where(
            squared_distances.sum() > 0, squared_distances, torch.ones_like(squared_distances)
        )
        cumulative = weights.double().cumsum(0)
        draw = torch.rand(1, generator=generator, device=x.device, dtype=torch.float64)
        # right=True: a row of weight zero spans an empty interval and is never drawn.
        chosen = torch.searchsorted(cumulative, draw * cumulative[-1], right=True)
        chosen = chosen.clamp(max=len(x) - 1)
        centroids[i : i + 1] = x[chosen]
        squared_distances = torch.minimum(squared_distances, (x - centroids[i]).square().sum(1))
    return centroids
