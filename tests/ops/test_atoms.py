"""Replacement atoms: the largest residuals, normalised, worst first; zero residuals and rows
beyond the signals are never a direction, however small the residuals (one process; two:
tests/bottlenecks/test_two_processes.py)."""

from __future__ import annotations

import torch

from laser_core.ops.atoms import reinitialise_atoms, replacement_directions


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


def test_chosen_atoms_take_the_worst_directions_in_order_while_there_are_any():
    residuals = torch.zeros(3, 4)
    residuals[0, 1], residuals[2, 3] = 2.0, -5.0  # two non-zero residuals, the last worst
    atom_rows = torch.eye(6, 4)
    chosen = torch.tensor([False, True, False, True, True, False])
    replaced = reinitialise_atoms(atom_rows, chosen, residuals)
    assert replaced.tolist() == [False, True, False, True, False, False]
    torch.testing.assert_close(atom_rows[1], torch.tensor([0, 0, 0, -1.0]))
    torch.testing.assert_close(atom_rows[3], torch.tensor([0, 1, 0, 0.0]))
    torch.testing.assert_close(atom_rows[[0, 2, 4, 5]], torch.eye(6, 4)[[0, 2, 4, 5]])
