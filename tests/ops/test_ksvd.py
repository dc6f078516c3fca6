"""K-SVD and the online dictionary update: error that only falls, rank-1 updates of atoms used
with either sign, unused atoms replaced from the worst-represented signals (two processes:
tests/bottlenecks/test_two_processes.py)."""

from __future__ import annotations

import itertools

import pytest
import torch

from laser_core.ops import (
    batch_omp,
    code_statistics,
    ksvd,
    ksvd_update,
    online_dictionary_update,
    reconstruct,
)
from laser_core.plugin.contracts import Codes
from tests.ops.test_omp import sparse_signals, unit_dictionary


def training_set(count: int = 1500, dim: int = 20, atoms: int = 40, sparsity: int = 3):
    """Noisy sparse combinations of a hidden dictionary, and a random starting dictionary."""
    hidden = unit_dictionary(dim, atoms, seed=10)
    signals, _ = sparse_signals(hidden, count, sparsity, seed=11)
    signals += 0.02 * torch.randn(count, dim, generator=torch.Generator().manual_seed(12))
    return signals, unit_dictionary(dim, atoms, seed=13)


def relative_error(signals: torch.Tensor, codes: Codes, dictionary: torch.Tensor) -> float:
    residual = signals - reconstruct(codes, dictionary)
    return (residual.square().sum() / signals.square().sum()).item()


def test_ksvd_lowers_representation_error_monotonically():
    signals, dictionary = training_set()
    errors = [relative_error(signals, batch_omp(signals, dictionary, 3), dictionary)]
    for _ in range(15):
        dictionary = ksvd(signals, dictionary, sparsity=3).dictionary
        errors.append(relative_error(signals, batch_omp(signals, dictionary, 3), dictionary))
    for before, after in itertools.pairwise(errors):
        assert after <= before * (1 + 1e-5) + 1e-7
    assert errors[-1] < 0.4 * errors[0]
    torch.testing.assert_close(dictionary.norm(dim=0), torch.ones(40))


def test_ksvd_recodes_with_batch_omp_before_each_update():
    signals, dictionary = training_set(count=300)
    dictionary[:, 39] = dictionary[:, 0]  # a copy OMP never selects: replaced in round one
    tolerance = 3.0  # a quarter of the signals stop after two atoms
    first = ksvd_update(signals, dictionary, batch_omp(signals, dictionary, 3, tolerance))
    codes = batch_omp(signals, first.dictionary, 3, tolerance)
    second = ksvd_update(signals, first.dictionary, codes)
    result = ksvd(signals, dictionary, 3, iterations=2, tolerance=tolerance)
    assert torch.equal(result.dictionary, second.dictionary)
    assert torch.equal(result.codes.indices, second.codes.indices)
    assert torch.equal(result.codes.values, second.codes.values)
    assert first.replaced.nonzero().flatten().tolist() == [39]
    assert torch.equal(result.replaced, first.replaced)


def test_ksvd_starts_from_the_codes_it_is_given():
    signals, dictionary = training_set(count=300)
    given = batch_omp(signals, dictionary, 2)
    result = ksvd(signals, dictionary, 3, codes=given)
    expected = ksvd_update(signals, dictionary, given)
    assert torch.equal(result.dictionary, expected.dictionary)
    assert torch.equal(result.codes.values, expected.codes.values)


def test_ksvd_update_never_raises_the_error_of_the_codes_it_starts_from():
    signals, dictionary = training_set()
    codes = batch_omp(signals, dictionary, 3)
    result = ksvd_update(signals, dictionary, codes)
    assert relative_error(signals, result.codes, result.dictionary) < relative_error(
        signals, codes, dictionary
    )
    # Supports are kept; only coefficients and atoms change.
    assert torch.equal(result.codes.indices, codes.indices)


def test_ksvd_update_moves_atoms_used_with_negative_coefficients():
    dictionary = unit_dictionary(8, 4)
    target = torch.nn.functional.normalize(dictionary[:, 0] + 0.3 * dictionary[:, 1], dim=0)
    signals = -torch.rand(50, 1) * target  # every signal uses atom 0 with a negative sign
    codes = batch_omp(signals, dictionary, 1)
    assert (codes.indices == 0).all() and (codes.values < 0).all()
    result = ksvd_update(signals, dictionary, codes)
    torch.testing.assert_close(result.dictionary[:, 0].abs(), target.abs(), atol=1e-5, rtol=0)
    torch.testing.assert_close(reconstruct(result.codes, result.dictionary), signals)


def test_ksvd_replaces_unused_atoms_by_worst_represented_signals():
    generator = torch.Generator().manual_seed(0)
    dictionary = torch.eye(6)[:, :4]  # atoms e0..e3
    signals = torch.randn(30, 6, generator=generator) * torch.tensor([1, 1, 1, 0, 0, 0.0])
    signals[7] = torch.tensor([0, 0, 0, 0, 3.0, 4.0])  # far outside span(e0, e1, e2)
    codes = batch_omp(signals, dictionary, 2)
    assert not (codes.indices[codes.values != 0] == 3).any()  # nothing uses e3
    result = ksvd_update(signals, dictionary, codes)
    assert result.replaced.tolist() == [False, False, False, True]
    residual = signals[7] - reconstruct(codes, dictionary)[7]
    torch.testing.assert_close(result.dictionary[:, 3], residual / residual.norm())


def test_ksvd_update_replaces_no_more_unused_atoms_than_there_are_signals():
    signals = torch.tensor([[1.0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 3, 4]])
    nothing = Codes(torch.zeros(2, 1, dtype=torch.long), torch.zeros(2, 1))  # all 4 atoms unused
    result = ksvd_update(signals, torch.eye(6)[:, :4], nothing)
    assert result.replaced.tolist() == [True, True, False, False]  # worst represented first
    torch.testing.assert_close(
        result.dictionary[:, :2], torch.stack([signals[1] / 5, signals[0]], 1)
    )


def test_ksvd_rejects_fewer_than_one_iteration():
    signals, dictionary = training_set(count=10)
    with pytest.raises(ValueError, match=r"^ksvd: iterations=0 must be at least 1$"):
        ksvd(signals, dictionary, 3, iterations=0)


def test_online_update_fits_the_accumulated_statistics():
    signals, dictionary = training_set()
    codes = batch_omp(signals, dictionary, 3)
    products, correlations = code_statistics(signals, codes, 40)
    dense = torch.zeros(len(signals), 40).scatter_add_(1, codes.indices, codes.values)
    torch.testing.assert_close(products, dense.t() @ dense, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(correlations, signals.t() @ dense, rtol=1e-4, atol=1e-3)

    def surrogate(d: torch.Tensor) -> float:
        return (0.5 * (d.t() @ d * products).sum() - (d * correlations).sum()).item()

    updated = online_dictionary_update(dictionary, products, correlations)
    assert surrogate(updated) < surrogate(dictionary)
    assert relative_error(signals, codes, updated) < relative_error(signals, codes, dictionary)
    torch.testing.assert_close(updated.norm(dim=0), torch.ones(40))
