"""vq-rate and fsq-rate: quantizers trained for rate. The entropy-constrained assignment picks
the code of least distortion + β bits, the bits are the chosen codes' -log2 prior, FSQ's levels
survive the coding stages, and both keep the bottleneck contract."""

from __future__ import annotations

import math

import pytest
import torch

from laser_core import BuildContext, LaserError
from laser_core.ops import frequency_bits
from laser_core.testing import check_component
from laser_plugins.bottlenecks.codebooks.vq_rate import RateVectorQuantizer, VQRateConfig
from laser_plugins.codec.fsq_rate import FSQRateConfig, RateFiniteScalarQuantizer


def vq_rate(rate_weight: float, bit_cost: float = 1.0) -> RateVectorQuantizer:
    """Two groups of 2 channels, 5 codes each, random codes and a skewed prior, in eval."""
    torch.manual_seed(0)
    config = VQRateConfig(codebook_size=5, group_dim=2, bit_cost=bit_cost, kmeans_init=False)
    bottleneck = RateVectorQuantizer(config, BuildContext(latent_dim=4, rate_weight=rate_weight))
    with torch.no_grad():
        bottleneck.logits.copy_(torch.tensor([[3.0, 0, -1, -2, 1], [0, 2, -3, 1, 0]]))
    return bottleneck.eval()


@pytest.mark.parametrize("name", ["vq-rate", "fsq-rate", "factorized", "hyperprior"])
def test_rate_bottlenecks_keep_the_bottleneck_contract(name):
    """factorized and hyperprior refine: the kit checks their relaxation too."""
    check_component("bottlenecks", name, {}, BuildContext(latent_dim=8, rate_weight=0.01))


def test_ecvq_picks_the_code_of_least_distortion_plus_weighted_bits():
    bottleneck = vq_rate(rate_weight=0.5, bit_cost=2.0)  # β = 1 squared unit per bit
    z = torch.randn(3, 4, 5, 6)
    indices = bottleneck.encode(z).indices  # (3, 5, 6, groups)
    vectors = z.permute(0, 2, 3, 1).reshape(-1, 2, 2)
    bits = -torch.log_softmax(bottleneck.logits, 1) / math.log(2)
    for group, codebook in enumerate(bottleneck.codebooks):
        distortion = torch.cdist(vectors[:, group], codebook.weight) ** 2
        expected = (distortion + 1.0 * bits[group]).argmin(1)
        assert torch.equal(indices[..., group].flatten(), expected)
        nearest = distortion.argmin(1)
        assert (expected != nearest).any(), "the rate moved some assignments off the nearest"


def test_without_a_rate_the_assignment_is_the_nearest_code():
    bottleneck = vq_rate(rate_weight=0.0)
    z = torch.randn(2, 4, 3, 3)
    vectors = z.permute(0, 2, 3, 1).reshape(-1, 2, 2)
    for group, codebook in enumerate(bottleneck.codebooks):
        nearest = torch.cdist(vectors[:, group], codebook.weight).argmin(1)
        assert torch.equal(bottleneck.encode(z).indices[..., group].flatten(), nearest)


def test_vq_bits_are_what_the_coding_table_spends_on_the_codes():
    bottleneck = vq_rate(rate_weight=0.5)
    z = torch.randn(2, 4, 3, 3)
    output = bottleneck(z)
    table = bottleneck.coding_tables()[0]
    symbols = bottleneck.stage_symbols(z)[0]  # (batch, groups, height, width)
    rows = bottleneck.stage_rows(0, [], (3, 3))
    coded = [
        frequency_bits(table.frequencies[rows.flatten()], symbols[image].flatten()).sum()
        for image in range(2)
    ]
    assert output.bits.tolist() == pytest.approx([float(bits) for bits in coded], rel=1e-5)
    assert torch.equal(bottleneck.dequantize([symbols]), output.quantized)


def test_the_prior_learns_from_the_rate_term():
    bottleneck = vq_rate(rate_weight=0.5)
    bottleneck(torch.randn(1, 4, 2, 2)).bits.sum().backward()
    assert bottleneck.logits.grad.abs().sum() > 0


def test_fsq_levels_survive_the_coding_stages():
    bottleneck = RateFiniteScalarQuantizer(FSQRateConfig(levels=5), BuildContext(latent_dim=3))
    bottleneck.eval()
    z = torch.tensor([-100.0, -1.0, -0.2, 0.0, 0.3, 0.9, 100.0]).view(1, 1, 1, 7).repeat(1, 3, 2, 1)
    levels = bottleneck.stage_symbols(z)[0]
    assert levels[0, 0, 0].tolist() == [-2, -2, 0, 0, 1, 2, 2]
    assert torch.equal(bottleneck.dequantize([levels]), bottleneck(z).quantized)
    codes = bottleneck.encode(z)
    assert codes.indices.min() == 0 and codes.indices.max() == 4
    assert torch.equal(bottleneck.decode(codes), levels.float())
    table = bottleneck.coding_tables()[0]
    assert (table.offsets >= -2).all() and (table.offsets + table.sizes <= 3).all()


def test_fsq_rate_refuses_an_even_number_of_levels():
    with pytest.raises(ValueError, match="odd number"):
        FSQRateConfig(levels=4)


def test_vq_rate_says_which_group_dim_fits_the_latents():
    config = VQRateConfig(group_dim=5)
    with pytest.raises(LaserError, match="group_dim 5 does not divide the encoder's latent_dim 8"):
        RateVectorQuantizer(config, BuildContext(latent_dim=8))
