"""k-means: correct clusters, k-means++ seeds (each distinct point once, then uniformly), fp32
under autocast, no failure when there are fewer points than clusters, and cluster statistics
without one-hot matrices (nearest-code search has its own tests in test_nearest_code.py)."""

from __future__ import annotations

import torch

from laser_core.ops.kmeans import cluster_statistics, kmeans


def test_kmeans_recovers_well_separated_clusters():
    torch.manual_seed(0)
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    x = centers.repeat_interleave(200, 0) + 0.1 * torch.randn(800, 2)
    generator = torch.Generator().manual_seed(0)
    centroids = kmeans(x, 4, iterations=10, generator=generator)
    distances = torch.cdist(centers, centroids)
    assert distances.min(1).values.max() < 0.05
    assert distances.argmin(1).unique().numel() == 4


def test_kmeans_is_reproducible_with_a_generator():
    x = torch.randn(500, 4)
    first = kmeans(x, 16, generator=torch.Generator().manual_seed(3))
    second = kmeans(x, 16, generator=torch.Generator().manual_seed(3))
    assert torch.equal(first, second)


def test_kmeans_with_fewer_points_than_clusters_returns_k_of_the_points():
    x = torch.randn(3, 5)
    centroids = kmeans(x, 8, generator=torch.Generator().manual_seed(0))
    assert centroids.shape == (8, 5)
    matches = (centroids[:, None] == x[None]).all(2)
    assert matches.any(1).all() and matches.any(0).all()


def test_kmeans_runs_in_fp32_under_bf16_autocast():
    torch.manual_seed(0)
    x = torch.randn(400, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = kmeans(x.bfloat16(), 8, generator=torch.Generator().manual_seed(0))
    plain = kmeans(x.bfloat16().float(), 8, generator=torch.Generator().manual_seed(0))
    assert mixed.dtype == torch.float32
    assert torch.equal(mixed, plain)


def test_cluster_statistics_match_a_dense_one_hot_computation():
    torch.manual_seed(0)
    x, indices = torch.randn(100, 3), torch.randint(7, (100,))
    counts, sums = cluster_statistics(x, indices, 7)
    one_hot = torch.nn.functional.one_hot(indices, 7).float()
    torch.testing.assert_close(counts, one_hot.sum(0))
    torch.testing.assert_close(sums, one_hot.T @ x)


def test_kmeans_plus_plus_seeds_each_of_k_distinct_points_once():
    # A seed's own distance is zero, so it is never drawn again; so close together that every
    # squared distance is below 1.
    x = 0.1 * torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    for seed in range(10):
        seeds = kmeans(x, 6, iterations=0, generator=torch.Generator().manual_seed(seed))
        matches = (seeds[:, None] == x[None]).all(2)
        assert (matches.sum(0) == 1).all() and (matches.sum(1) == 1).all()


def test_kmeans_plus_plus_seeds_uniformly_once_every_point_is_a_seed():
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
    seeds = kmeans(x, 200, iterations=0, generator=torch.Generator().manual_seed(0))
    per_point = (seeds[:, None] == x[None]).all(2).sum(0)
    assert per_point.sum() == 200 and per_point.min() > 70
