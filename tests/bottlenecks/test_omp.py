"""omp: the bottleneck contract in every update mode, gradients equal to the textbook losses,
patches as signals, data initialisation, atom re-normalisation and dead-atom revival, and online
learning (two processes: test_two_processes.py)."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from laser_core.assembly.build import build_component
from laser_core.errors import LaserError
from laser_core.ops import reconstruct
from laser_core.plugin.contracts import BuildContext
from laser_core.testing import check_component
from laser_plugins.bottlenecks.dictionary.sparse_coding import DictionaryBottleneck, OMPConfig
from tests.ops.test_omp import sparse_signals, unit_dictionary


def build(dim: int = 4, **params) -> DictionaryBottleneck:
    return DictionaryBottleneck(OMPConfig(**params), BuildContext(latent_dim=dim))


def sparse_latents(dictionary: torch.Tensor, batch: int = 8, size: int = 4, seed: int = 1):
    """Latents (batch, M, size, size) whose vectors are 2-sparse over ``dictionary`` (M, K)."""
    signals, _ = sparse_signals(dictionary, batch * size * size, 2, seed=seed)
    return signals.reshape(batch, size, size, -1).permute(0, 3, 1, 2).contiguous()


def representation_error(bottleneck: DictionaryBottleneck, z: torch.Tensor) -> float:
    bottleneck.eval()
    with torch.no_grad():
        error = (bottleneck(z).quantized - z).square().sum() / z.square().sum()
    bottleneck.train()
    return error.item()


def errors_while_learning(
    bottleneck: DictionaryBottleneck, z: torch.Tensor, steps: int
) -> list[float]:
    """The representation error of ``z`` once the first training batch (``z``) has initialised
    the atoms, then after each of ``steps`` updates outside autograd, each fed ``z`` again."""
    bottleneck(z)
    errors = [representation_error(bottleneck, z)]
    for _ in range(steps):
        assert bottleneck.after_optimizer_step() == []
        errors.append(representation_error(bottleneck, z))
        bottleneck(z)
    return errors


@pytest.mark.parametrize(
    "params",
    [
        {"atoms": 32, "sparsity": 4},
        {"atoms": 32, "sparsity": 4, "update": "online", "tolerance": 0.01},
        {"atoms": 32, "sparsity": 4, "update": "ksvd", "ksvd_iterations": 2},
    ],
)
def test_omp_conforms_to_the_bottleneck_contract(params):
    check_component("bottlenecks", "omp", params, BuildContext(latent_dim=8))


def test_omp_rejects_sparsity_above_the_signal_dimension_at_build_time():
    with pytest.raises(LaserError, match="sparsity=9 exceeds the signal dimension 8"):
        build_component("bottlenecks", {"name": "omp", "sparsity": 9}, BuildContext(latent_dim=8))
    assert build(dim=4, sparsity=9, patch_size=2).signal_dim == 16  # patches allow more


def test_omp_rejects_options_of_another_update_rule():
    with pytest.raises(ValidationError, match="ksvd_iterations applies only to update: ksvd"):
        OMPConfig(update="gradient", ksvd_iterations=2)
    with pytest.raises(ValidationError, match="dictionary_loss_weight applies only"):
        OMPConfig(update="online", dictionary_loss_weight=1.0)


def test_omp_gradients_equal_the_straight_through_and_dictionary_losses():
    torch.manual_seed(0)
    bottleneck = build(atoms=16, sparsity=3, commitment_weight=0.3, dictionary_loss_weight=0.7)
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    upstream = torch.randn_like(z)
    out = bottleneck(z)
    ((out.quantized * upstream).sum() + out.loss).backward()

    # The same losses written out with a dense coefficient matrix.
    dictionary = bottleneck.dictionary.detach().clone().requires_grad_(True)
    z_ref = z.detach().clone().requires_grad_(True)
    signals = z_ref.permute(0, 2, 3, 1).reshape(-1, 4)
    flat = out.codes.map(lambda t: t.reshape(-1, 3))
    coefficients = torch.zeros(len(signals), 16).scatter_add_(1, flat.indices, flat.values)
    fitted = coefficients @ dictionary
    loss = 0.3 * (signals - fitted.detach()).square().mean()
    loss = loss + 0.7 * (fitted - signals.detach()).square().mean()
    quantized = z_ref + (fitted.reshape(2, 3, 3, 4).permute(0, 3, 1, 2) - z_ref).detach()
    ((quantized * upstream).sum() + loss).backward()

    torch.testing.assert_close(out.loss, loss)
    torch.testing.assert_close(z.grad, z_ref.grad)
    torch.testing.assert_close(bottleneck.dictionary.grad, dictionary.grad)


def test_omp_codes_patches_as_signals():
    bottleneck = build(dim=3, atoms=24, sparsity=5, patch_size=2)
    z = torch.randn(2, 3, 4, 6)
    out = bottleneck(z)
    assert out.codes.indices.shape == (2, 2, 3, 5)
    assert bottleneck.dictionary.shape == (24, 12)
    bottleneck.eval()
    with torch.no_grad():
        torch.testing.assert_close(bottleneck.decode(bottleneck.encode(z)), bottleneck(z).quantized)
    # One patch is one signal: the top-left 2x2 block of the first latent, channels first.
    signal = z[0, :, :2, :2].reshape(-1)
    first = out.codes.map(lambda t: t[0, 0, 0][None])
    fitted = reconstruct(first, bottleneck.dictionary.t())[0]
    torch.testing.assert_close(out.quantized[0, :, :2, :2].reshape(-1), fitted.detach())
    assert (fitted - signal).norm() < signal.norm()
    with pytest.raises(ValueError, match="divisible by patch_size=2"):
        bottleneck(torch.randn(1, 3, 5, 4))


def test_omp_initialises_atoms_from_the_first_training_batch():
    bottleneck = build(atoms=8, sparsity=2)
    z = torch.randn(1, 4, 4, 4)
    bottleneck.train()
    bottleneck(z)
    signals = torch.nn.functional.normalize(z.permute(0, 2, 3, 1).reshape(-1, 4), dim=1)
    cosines = bottleneck.dictionary.detach() @ signals.t()
    torch.testing.assert_close(cosines.max(1).values, torch.ones(8))
    before = bottleneck.dictionary.detach().clone()
    bottleneck(torch.randn(1, 4, 4, 4))
    assert torch.equal(bottleneck.dictionary, before)  # only the first batch


def test_omp_renormalises_atoms_and_revives_dead_ones_after_optimizer_step():
    torch.manual_seed(0)
    bottleneck = build(atoms=32, sparsity=2, dead_atom_after=1)
    bottleneck.initialized.fill_(True)  # keep the random atoms
    z = torch.randn(2, 4, 3, 3)
    out = bottleneck(z)
    atoms = bottleneck.dictionary.detach().clone()
    with torch.no_grad():
        bottleneck.dictionary.mul_(3.0)  # as if an optimizer step had stretched the atoms
    used = out.codes.indices[out.codes.values != 0].unique().tolist()
    dead = sorted(set(range(32)) - set(used))

    revived = bottleneck.after_optimizer_step()

    assert len(revived) == 1 and revived[0][0] is bottleneck.dictionary
    assert revived[0][1].nonzero().squeeze(1).tolist() == dead  # a mask over atoms
    torch.testing.assert_close(bottleneck.dictionary.norm(dim=1), torch.ones(32))
    torch.testing.assert_close(bottleneck.dictionary[used], atoms[used])
    # Each revived atom is the residual direction of one of the worst-represented signals.
    signals = z.permute(0, 2, 3, 1).reshape(-1, 4)
    residual = signals - reconstruct(out.codes.map(lambda t: t.reshape(-1, 2)), atoms.t())
    worst = residual.norm(dim=1).topk(len(dead)).indices
    expected = torch.nn.functional.normalize(residual[worst], dim=1)
    torch.testing.assert_close(bottleneck.dictionary.detach()[dead], expected)
    assert bottleneck(z).stats["dead_atoms"] == 0


def test_omp_online_update_learns_the_dictionary_without_gradients():
    torch.manual_seed(0)
    hidden = unit_dictionary(6, 12, seed=3)
    z = sparse_latents(hidden)
    bottleneck = build(dim=6, atoms=12, sparsity=2, update="online", forgetting_factor=0.9)
    assert not list(bottleneck.parameters())
    errors = errors_while_learning(bottleneck, z, steps=8)
    # measured (seeded): 0.124 -> 0.059 relative error in eight steps
    assert errors[-1] < 0.07 and errors[-1] < 0.5 * errors[0]
    torch.testing.assert_close(bottleneck.dictionary.norm(dim=1), torch.ones(12))


def test_omp_stats_report_sparsity_active_atoms_and_coefficient_magnitude():
    """Over the standard basis, codes are the vectors' own non-zero entries: three positions
    with 1, 2 and 1 non-zeros (3, -2 and 1, 0.5) on atoms 0, 1, 2."""
    bottleneck = build(dim=4, atoms=4, sparsity=2, tolerance=1e-9).eval()
    with torch.no_grad():
        bottleneck.dictionary.copy_(torch.eye(4))
    z = torch.tensor([[3.0, 0, 0, 0], [0, -2, 1, 0], [0, 0, 0.5, 0]]).t().reshape(1, 4, 1, 3)
    stats = bottleneck(z).stats
    assert stats["sparsity"].item() == pytest.approx(4 / 3)
    assert stats["active_atoms"].item() == 3
    assert stats["coefficient_magnitude"].item() == pytest.approx((3 + 2 + 1 + 0.5) / 4)
    assert stats["dead_atoms"].item() == 0
