"""gumbel: training samples codes from softmax(logits) at any temperature (tempered sampling:
from softmax(logits / τ), the argmax as τ → 0), the relaxation turns one-hot as τ → 0, the
encoder's gradient is the relaxation's, τ anneals, KL to uniform in closed form."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import chisquare

from laser_core.plugin.contracts import BuildContext
from laser_core.plugin.registry import Provider, Registry
from laser_core.testing import check_component
from laser_plugins.bottlenecks import gumbel
from laser_plugins.bottlenecks.gumbel import GumbelConfig, GumbelQuantizer

LOGITS = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0, -3.0])


def with_fixed_logits(
    temperature: float, hard: bool = True, sampling: str = "gumbel-softmax"
) -> GumbelQuantizer:
    """A quantizer whose logits are LOGITS at every position, whatever the latent."""
    config = GumbelConfig(
        codebook_size=len(LOGITS),
        temperature_start=temperature,
        temperature_end=temperature,
        hard=hard,
        sampling=sampling,
    )
    bottleneck = GumbelQuantizer(config, BuildContext(latent_dim=4))
    with torch.no_grad():
        bottleneck.projection.weight.zero_()
        bottleneck.projection.bias.copy_(LOGITS)
    return bottleneck


@pytest.mark.parametrize(
    "params",
    [
        {"codebook_size": 16},
        {"codebook_size": 16, "hard": False, "anneal": "linear"},
        {"codebook_size": 16, "sampling": "tempered"},
    ],
)
def test_gumbel_conforms_to_the_bottleneck_contract(params):
    registry = Registry()
    registry.add_plugin(gumbel, Provider("gumbel", "laser", "test"))
    check_component("bottlenecks", "gumbel", params, BuildContext(latent_dim=8), registry)


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_sampled_code_frequencies_follow_softmax_of_the_logits_at_any_temperature(temperature):
    # Gumbel-max: argmax(logits + g) is distributed as softmax(logits); τ only shapes the
    # relaxation, never which code is drawn.
    torch.manual_seed(0)
    bottleneck = with_fixed_logits(temperature).train()
    indices = bottleneck(torch.randn(16, 4, 32, 32)).codes.indices
    observed = torch.bincount(indices.flatten(), minlength=len(LOGITS))
    expected = torch.softmax(LOGITS.double(), 0) * observed.sum()
    assert chisquare(observed.numpy(), expected.numpy()).pvalue > 0.01
    tempered = torch.softmax(LOGITS.double() / temperature, 0) * observed.sum()
    assert chisquare(observed.numpy(), tempered.numpy()).pvalue < 1e-6


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_tempered_sampling_draws_codes_from_softmax_of_logits_over_temperature(temperature):
    torch.manual_seed(0)
    bottleneck = with_fixed_logits(temperature, sampling="tempered").train()
    indices = bottleneck(torch.randn(16, 4, 32, 32)).codes.indices
    observed = torch.bincount(indices.flatten(), minlength=len(LOGITS))
    tempered = torch.softmax(LOGITS.double() / temperature, 0) * observed.sum()
    assert chisquare(observed.numpy(), tempered.numpy()).pvalue > 0.01
    untempered = torch.softmax(LOGITS.double(), 0) * observed.sum()
    assert chisquare(observed.numpy(), untempered.numpy()).pvalue < 1e-6


def test_tempered_samples_are_the_argmax_as_temperature_goes_to_zero():
    torch.manual_seed(0)
    z = torch.randn(16, 4, 32, 32)
    cold = with_fixed_logits(1e-3, sampling="tempered").train()(z).codes.indices
    assert (cold == LOGITS.argmax()).all()
    warm = with_fixed_logits(1.0, sampling="tempered").train()(z).codes.indices
    assert (warm != LOGITS.argmax()).any()


def test_the_relaxed_sample_becomes_the_one_hot_of_its_argmax_as_temperature_goes_to_zero():
    torch.manual_seed(0)
    z = torch.randn(4, 4, 8, 8)
    gaps = {}
    for temperature in (1.0, 1e-3):
        bottleneck = with_fixed_logits(temperature, hard=False).train()
        output = bottleneck(z)
        sampled = bottleneck.decode(output.codes)
        gaps[temperature] = (output.quantized - sampled).abs().max().item()
    assert gaps[1e-3] < 1e-4 < gaps[1.0]


def test_eval_and_encode_take_the_argmax():
    bottleneck = with_fixed_logits(1.0).eval()
    z = torch.randn(2, 4, 4, 4)
    assert (bottleneck(z).codes.indices == 0).all()
    assert (bottleneck.encode(z).indices == 0).all()


def test_the_encoder_gradient_is_the_relaxations_softmax_jacobian_chain():
    """Hard samples pass the gradient of softmax((logits + g) / τ) (straight-through on the
    relaxation): for upstream gradient U, G_k = <U, code_k>, the logits get
    y * (G - <y, G>) / τ and the latent Wᵀ of that, written out here by hand."""
    tau = 0.5
    config = GumbelConfig(codebook_size=6, temperature_start=tau, temperature_end=tau)
    torch.manual_seed(0)
    bottleneck = GumbelQuantizer(config, BuildContext(latent_dim=3)).train()
    z = torch.randn(2, 3, 2, 2, requires_grad=True)
    upstream = torch.randn(2, 3, 2, 2)
    torch.manual_seed(1)
    (bottleneck(z).quantized * upstream).sum().backward()

    with torch.no_grad():
        weight = bottleneck.projection.weight[:, :, 0, 0]  # (K, D)
        bias = bottleneck.projection.bias.view(1, -1, 1, 1)
        logits = (torch.einsum("kd,bdhw->bkhw", weight, z) + bias).contiguous()
        torch.manual_seed(1)  # the same Gumbel noise as the forward pass drew
        noise = -torch.empty_like(logits).exponential_().log()
        y = torch.softmax((logits + noise) / tau, dim=1)
        g = torch.einsum("bdhw,kd->bkhw", upstream, bottleneck.codebook)
        logit_grad = y * (g - (y * g).sum(1, keepdim=True)) / tau
        expected = torch.einsum("bkhw,kd->bdhw", logit_grad, weight)
    torch.testing.assert_close(z.grad, expected, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(z.grad, upstream, atol=1e-3)  # not straight-through on codes


@pytest.mark.parametrize(
    ("anneal", "halfway"), [("exponential", (1.0 * 0.01) ** 0.5), ("linear", 0.505)]
)
def test_temperature_anneals_per_training_batch_and_then_stays(anneal, halfway):
    config = GumbelConfig(
        codebook_size=4,
        temperature_start=1.0,
        temperature_end=0.01,
        anneal_steps=10,
        anneal=anneal,
    )
    bottleneck = GumbelQuantizer(config, BuildContext(latent_dim=2)).train()
    z = torch.randn(1, 2, 2, 2)
    seen = [bottleneck(z).stats["temperature"].item() for _ in range(15)]
    assert seen[0] == pytest.approx(1.0)
    assert seen[5] == pytest.approx(halfway)
    assert seen[10:] == pytest.approx([0.01] * 5)
    bottleneck.eval()(z)
    assert bottleneck.step.item() == 15


def test_kl_to_uniform_vanishes_for_uniform_logits_and_grows_otherwise():
    z = torch.randn(2, 4, 4, 4)
    peaked = with_fixed_logits(1.0).eval()
    uniform = with_fixed_logits(1.0).eval()
    with torch.no_grad():
        uniform.projection.bias.zero_()
    assert uniform(z).stats["kl"].item() == pytest.approx(0.0, abs=1e-6)
    assert peaked(z).stats["kl"].item() > 0.1
    p = [math.exp(x) for x in LOGITS.tolist()]
    p = [x / sum(p) for x in p]
    closed_form = sum(x * math.log(x * len(p)) for x in p)  # KL(p || uniform) = log K - H(p)
    assert peaked(z).stats["kl"].item() == pytest.approx(closed_form, rel=1e-5)
    assert peaked(z).loss.item() == pytest.approx(5e-4 * closed_form, rel=1e-5)
