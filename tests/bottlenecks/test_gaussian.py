"""gaussian: reparameterised samples with the predicted moments in training, the mean in eval
and as the code, and the closed-form KL to the standard normal."""

from __future__ import annotations

import pytest
import torch

from laser_core.plugin.contracts import BuildContext
from laser_core.plugin.registry import Provider, Registry
from laser_core.testing import check_component
from laser_plugins.bottlenecks import gaussian
from laser_plugins.bottlenecks.gaussian import GaussianBottleneck, GaussianConfig

MEAN = torch.tensor([1.0, -2.0, 0.5])
LOG_VARIANCE = torch.tensor([0.0, -1.0, 1.0])


def with_fixed_moments(kl_weight: float = 1.0) -> GaussianBottleneck:
    """A bottleneck predicting MEAN and LOG_VARIANCE at every position, whatever the latent."""
    bottleneck = GaussianBottleneck(GaussianConfig(kl_weight=kl_weight), BuildContext(latent_dim=3))
    with torch.no_grad():
        bottleneck.projection.weight.zero_()
        bottleneck.projection.bias.copy_(torch.cat([MEAN, LOG_VARIANCE]))
    return bottleneck


def test_gaussian_conforms_to_the_bottleneck_contract():
    registry = Registry()
    registry.add_plugin(gaussian, Provider("gaussian", "laser", "test"))
    check_component(
        "bottlenecks", "gaussian", {"kl_weight": 0.1}, BuildContext(latent_dim=8), registry
    )


def test_training_samples_have_the_predicted_mean_and_variance():
    torch.manual_seed(0)
    bottleneck = with_fixed_moments().train()
    samples = bottleneck(torch.randn(64, 3, 16, 16)).quantized.transpose(0, 1).flatten(1)
    torch.testing.assert_close(samples.mean(1), MEAN, atol=0.03, rtol=0)
    torch.testing.assert_close(samples.var(1), LOG_VARIANCE.exp(), atol=0.0, rtol=0.03)


def test_eval_decodes_the_mean_which_is_also_the_code():
    bottleneck = with_fixed_moments().eval()
    output = bottleneck(torch.randn(2, 3, 4, 4))
    expected = MEAN.expand(2, 4, 4, 3)
    assert output.codes.indices is None
    torch.testing.assert_close(output.codes.values, expected)
    torch.testing.assert_close(output.quantized, expected.permute(0, 3, 1, 2))


def test_loss_is_the_weighted_kl_to_the_standard_normal():
    bottleneck = with_fixed_moments(kl_weight=0.5)
    output = bottleneck(torch.randn(2, 3, 4, 4))
    posterior = torch.distributions.Normal(MEAN, (0.5 * LOG_VARIANCE).exp())
    prior = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    expected = torch.distributions.kl_divergence(posterior, prior).mean()
    assert output.stats["kl"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert output.loss.item() == pytest.approx(0.5 * expected.item(), rel=1e-5)
