"""Replacement atoms: the largest residuals, normalised, worst first; zero residuals and rows
beyond the signals are never a direction, however small the residuals (one process; two:
tests/bottlenecks/test_two_processes.py)."""

from __future__ import annotations

import torch

from laser_core.ops.atoms import replacement_directions, worst_represented_directions


def test_replacement_directions_are_the_largest_residuals_normalised_worst_first():
    # 5 signals of 6 features, norms well below 1, one residual exactly zero; 8 asked for.
    residuals = 0.1 * torch.randn(5, 6, generator=torch.Generator().manual_seed(0))
    residuals[2] = 0
    norms = residuals.norm(dim=1)
    worst = norms.argsort(descending=True)[:4]
    expected = residuals[worst] / norms[worst, None]

    directions, valid = replacement_directions(residuals, 8)
    assert directions.shape == (8, 6)
    assert valid.tolist() == [True] * 4 + [False] * 4
    torch.testing.assert_close(directions[:4], expected)
    torch.testing.assert_close(worst_represented_directions(residuals, 8), expected)


def test_no_replacement_directions_asked_for_gives_none():
    assert worst_represented_directions(torch.randn(5, 6), 0).shape == (0, 6)
