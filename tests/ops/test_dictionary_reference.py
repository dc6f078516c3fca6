"""K-SVD and the online dictionary update give today's results (within 1e-5) after the rewrite
that removed their host syncs and the (N, depth, M) tensor: the previous implementations are
kept here, written plainly, as the reference."""

from __future__ import annotations

import importlib

import pytest
import torch

from laser_core.ops import (
    batch_omp,
    code_statistics,
    ksvd_update,
    online_dictionary,
    online_dictionary_update,
    reconstruct,
)
from laser_core.ops.atoms import replacement_directions
from laser_core.plugin.contracts import Codes
from tests.ops.test_ksvd import training_set

ksvd = importlib.import_module("laser_core.ops.ksvd")  # the package's `ksvd` is the function


def reference_ksvd_update(signals, dictionary, codes):
    """The per-atom Gauss-Seidel sweep as it was (one process)."""
    atom_rows = dictionary.float().t().contiguous()
    indices, values = codes.indices.clone(), codes.values.float().clone()
    residual = signals - reconstruct(Codes(indices, values), atom_rows.t())
    depth = indices.shape[1]
    flat_indices, flat_values = indices.view(-1), values.view(-1)
    unused = []
    for atom in range(atom_rows.shape[0]):
        slots = ((flat_indices == atom) & (flat_values != 0)).nonzero().squeeze(1)
        if len(slots) == 0:
            unused.append(atom)
            continue
        members, coefficients = slots // depth, flat_values[slots]
        error = residual[members] + coefficients[:, None] * atom_rows[atom]
        direction = coefficients @ error
        if direction.norm() == 0:
            continue
        direction = direction / direction.norm()
        coefficients = error @ direction
        residual[members] = error - coefficients[:, None] * direction
        flat_values[slots] = coefficients
        atom_rows[atom] = direction
    directions, valid = replacement_directions(residual, len(unused))
    replaced = torch.tensor(unused, dtype=torch.long)[valid]
    atom_rows[replaced] = directions[valid]
    return atom_rows.t(), torch.where(values != 0, indices, 0), values, replaced


def reference_code_statistics(signals, codes, atoms):
    dense = torch.zeros(len(signals), atoms, dtype=torch.float64)
    dense.scatter_add_(1, codes.indices, codes.values.double())
    return (dense.t() @ dense).float(), (signals.double().t() @ dense).float()


def reference_online_update(dictionary, products, correlations):
    atom_rows = dictionary.float().t().contiguous()
    for atom, weight in enumerate(products.diagonal().tolist()):
        if weight <= 0:
            continue
        step = atom_rows[atom] + (correlations.t()[atom] - products[atom] @ atom_rows) / weight
        if step.norm() > 0:
            atom_rows[atom] = step / step.norm()
    return atom_rows.t()


@pytest.mark.parametrize(("unused_atoms", "scale"), [(False, 1.0), (True, 1.0), (False, 0.01)])
def test_ksvd_update_matches_the_per_atom_reference(unused_atoms, scale):
    signals, dictionary = training_set(count=600)
    signals = scale * signals  # 0.01: atom directions E g of norm far below 1
    codes = batch_omp(signals, dictionary, 3)
    if unused_atoms:  # atom 17 loses its signals (re-initialised), atom 5 all but one
        uses_5 = codes.indices == 5
        first_use_5 = uses_5 & (uses_5.flatten().cumsum(0).view_as(uses_5) == 1)
        keep = (codes.indices != 17) & (~uses_5 | first_use_5)
        codes = Codes(torch.where(keep, codes.indices, 0), torch.where(keep, codes.values, 0.0))
    result = ksvd_update(signals, dictionary, codes)
    atoms, indices, values, replaced = reference_ksvd_update(signals, dictionary, codes)
    torch.testing.assert_close(result.dictionary, atoms, atol=1e-5, rtol=0)
    torch.testing.assert_close(result.codes.values, values, atol=1e-5, rtol=0)
    assert torch.equal(result.codes.indices, indices)
    assert result.replaced.nonzero().flatten().tolist() == replaced.tolist()
    assert replaced.tolist() == ([17] if unused_atoms else [])


@pytest.mark.parametrize("widen", [1, 3])
def test_ksvd_padding_to_the_captured_table_width_changes_nothing(monkeypatch, widen):
    """On CUDA each atom's signals are padded to a power of two (one graph serves many steps):
    the padding must not move an atom, a coefficient or the residual."""
    signals, dictionary = training_set(count=600)
    codes = batch_omp(signals, dictionary, 3)
    captured_width = ksvd._table_width
    monkeypatch.setattr(
        ksvd, "_table_width", lambda widest, captured: widen * captured_width(widest, True)
    )
    result = ksvd_update(signals, dictionary, codes)
    atoms, indices, values, _ = reference_ksvd_update(signals, dictionary, codes)
    torch.testing.assert_close(result.dictionary, atoms, atol=1e-5, rtol=0)
    torch.testing.assert_close(result.codes.values, values, atol=1e-5, rtol=0)
    assert torch.equal(result.codes.indices, indices)


def test_code_statistics_in_chunks_match_the_dense_sums(monkeypatch):
    signals, dictionary = training_set(count=500)
    codes = batch_omp(signals, dictionary, 3)
    monkeypatch.setattr(online_dictionary, "CHUNK_ELEMENTS", 7 * signals.shape[1])  # 72 chunks
    products, correlations = code_statistics(signals, codes, 40)
    expected_products, expected_correlations = reference_code_statistics(signals, codes, 40)
    torch.testing.assert_close(products, expected_products, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(correlations, expected_correlations, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("scale", [1.0, 0.01])
def test_online_update_matches_the_per_atom_reference(scale):
    signals, dictionary = training_set(count=500)
    signals = scale * signals  # 0.01: every A_jj below 1
    codes = batch_omp(signals, dictionary, 3)
    products, correlations = code_statistics(signals, codes, 40)
    products[7], products[:, 7] = 0, 0  # atom 7 unused since the statistics were reset
    correlations[:, 7] = 0
    updated = online_dictionary_update(dictionary, products, correlations)
    expected = reference_online_update(dictionary, products, correlations)
    torch.testing.assert_close(updated, expected, atol=1e-5, rtol=0)
    assert torch.equal(updated[:, 7], dictionary[:, 7])
