"""LASER's entropy models and GDN: likelihoods that are probabilities, rounding around the
medians and means, the auxiliary loss fitting the tails, GDN's formula, and CompressAI's state
dict keys (tools/check_entropy_layers.py compares the numbers with CompressAI itself)."""

from __future__ import annotations

import math

import pytest
import torch

from laser_plugins.codec.entropy_layers import (
    GDN,
    EntropyBottleneck,
    GaussianConditional,
    LowerBound,
)


def perturbed_bottleneck(channels: int = 2) -> EntropyBottleneck:
    """A bottleneck whose density is not the initial one, so that each channel differs."""
    torch.manual_seed(0)
    bottleneck = EntropyBottleneck(channels)
    with torch.no_grad():
        for parameter in [*bottleneck.matrices, *bottleneck.biases, *bottleneck.factors]:
            parameter.add_(0.3 * torch.randn_like(parameter))
    return bottleneck.eval()


def test_factorized_likelihoods_over_the_integers_sum_to_one():
    bottleneck = perturbed_bottleneck()
    integers = torch.arange(-200.0, 201.0).expand(1, 2, 1, -1)
    _, likelihoods = bottleneck(integers)
    totals = likelihoods.double().sum(dim=(0, 2, 3))
    assert torch.allclose(totals, torch.ones(2, dtype=torch.float64), atol=1e-5)
    assert likelihoods.min() >= 1e-9


def test_eval_rounds_around_the_medians():
    bottleneck = perturbed_bottleneck()
    with torch.no_grad():
        bottleneck.quantiles[:, 0, 1] = torch.tensor([0.3, -0.2])
    x = torch.tensor([[0.0, 0.79, 0.81, -1.3], [0.0, 0.29, 0.31, -1.3]]).reshape(1, 2, 2, 2)
    values, _ = bottleneck(x)
    expected = torch.tensor([[0.3, 0.3, 1.3, -1.7], [-0.2, -0.2, 0.8, -1.2]]).reshape(1, 2, 2, 2)
    assert torch.allclose(values, expected, atol=1e-6)


def test_training_adds_noise_within_half_and_gradients_reach_input_and_density():
    bottleneck = perturbed_bottleneck().train()
    x = torch.randn(3, 2, 4, 4, requires_grad=True)
    values, likelihoods = bottleneck(x)
    assert 0 < (values - x).abs().max() <= 0.5
    (-torch.log2(likelihoods).sum()).backward()
    assert x.grad.abs().sum() > 0
    for parameter in [*bottleneck.matrices, *bottleneck.biases, *bottleneck.factors]:
        assert parameter.grad.abs().sum() > 0
    assert bottleneck.quantiles.grad is None


def test_aux_loss_moves_only_the_quantiles_out_to_the_tails():
    bottleneck = perturbed_bottleneck().train()
    before = bottleneck.quantiles.detach().clone()
    first_loss = bottleneck.loss().item()
    for _ in range(10):
        bottleneck.quantiles.grad = None
        bottleneck.loss().backward()
        with torch.no_grad():
            bottleneck.quantiles -= 5.0 * bottleneck.quantiles.grad
    after = bottleneck.quantiles.detach()
    assert bottleneck.loss().item() < first_loss - 1
    assert (after[:, 0, 0] < before[:, 0, 0]).all() and (after[:, 0, 2] > before[:, 0, 2]).all()
    assert all(matrix.grad is None for matrix in bottleneck.matrices)


def normal_interval(value: float, mean: float, scale: float) -> float:
    def cdf(x: float) -> float:
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    scale = max(scale, 0.11)
    return max(cdf((value - mean + 0.5) / scale) - cdf((value - mean - 0.5) / scale), 1e-9)


def test_gaussian_likelihood_is_the_normal_mass_of_the_unit_interval():
    gaussian = GaussianConditional().eval()
    values = torch.tensor([0.2, 1.4, -2.6, 3.0, 0.0, 40.0])
    means = torch.tensor([0.0, 0.5, -0.3, 0.0, 0.1, 0.0])
    scales = torch.tensor([1.0, 0.7, 2.5, 0.05, 0.01, 1.0])
    rounded, likelihoods = gaussian(values, scales, means)
    assert torch.allclose(rounded, torch.round(values - means) + means)
    expected = [
        normal_interval(v, m, s)
        for v, m, s in zip(rounded.tolist(), means.tolist(), scales.tolist(), strict=True)
    ]
    assert likelihoods.tolist() == pytest.approx(expected, rel=1e-5)
    assert likelihoods[-1].item() == pytest.approx(1e-9)


def test_gaussian_refuses_a_scale_table():
    with pytest.raises(ValueError, match="scale_table"):
        GaussianConditional([0.11, 1.0])


def test_lower_bound_passes_gradients_that_raise_a_bounded_value():
    x = torch.tensor([0.5, 0.5, 2.0], requires_grad=True)
    y = LowerBound(1.0)(x)
    assert y.tolist() == [1.0, 1.0, 2.0]
    y.backward(torch.tensor([1.0, -1.0, 1.0]))
    assert x.grad.tolist() == [0.0, -1.0, 1.0]


@pytest.mark.parametrize("inverse", [False, True])
def test_gdn_follows_its_formula(inverse: bool):
    gdn = GDN(2, inverse=inverse)
    beta, gamma = torch.tensor([0.5, 2.0]), torch.tensor([[0.1, 0.3], [0.2, 0.4]])
    with torch.no_grad():
        gdn.beta.copy_(gdn.beta_reparam.init(beta))
        gdn.gamma.copy_(gdn.gamma_reparam.init(gamma))
    x = torch.tensor([1.0, -2.0, 0.5, 3.0]).reshape(1, 2, 1, 2)
    y = gdn(x)
    for column in range(2):
        pixel = x[0, :, 0, column]
        for channel in range(2):
            root = math.sqrt(beta[channel] + (gamma[channel] * pixel**2).sum())
            expected = pixel[channel] * root if inverse else pixel[channel] / root
            assert y[0, channel, 0, column].item() == pytest.approx(expected.item(), rel=1e-5)


def test_state_dict_keys_are_compressai_keys_without_its_coder_buffers():
    bottleneck_keys = set(EntropyBottleneck(2, filters=(3,)).state_dict())
    assert bottleneck_keys == {
        "likelihood_lower_bound.bound",
        "matrices.0",
        "matrices.1",
        "biases.0",
        "biases.1",
        "factors.0",
        "quantiles",
        "target",
    }
    assert set(GaussianConditional().state_dict()) == {
        "likelihood_lower_bound.bound",
        "lower_bound_scale.bound",
        "scale_bound",
    }
    assert set(GDN(2).state_dict()) == {
        "beta",
        "gamma",
        "beta_reparam.pedestal",
        "beta_reparam.lower_bound.bound",
        "gamma_reparam.pedestal",
        "gamma_reparam.lower_bound.bound",
    }
