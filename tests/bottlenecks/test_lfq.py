"""lfq: signs as codes, bits or one index, and MAGVIT-v2's entropy penalty, checked against a
hand-computed example and a brute-force softmax over every code."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from laser_core import BuildContext, Codes, RecipeError, load_recipe
from laser_core.plugin.registry import Provider, Registry
from laser_core.testing import check_component
from laser_plugins.bottlenecks import lfq
from laser_plugins.bottlenecks.lfq import LFQConfig, LookupFreeQuantizer
from tests.helpers import TINY_RECIPE


def build(dim: int, **params) -> LookupFreeQuantizer:
    return LookupFreeQuantizer(LFQConfig(**params), BuildContext(latent_dim=dim))


def latents(vectors: list[list[float]]) -> torch.Tensor:
    """Vectors (positions, dims) as latents (1, dims, 1, positions)."""
    return torch.tensor(vectors).t().reshape(1, len(vectors[0]), 1, len(vectors))


@pytest.mark.parametrize(
    ("dim", "params"),
    [
        (8, {"dims": 8}),
        (16, {"dims": 8}),
        (4, {"dims": 4, "codes": "per-dimension"}),
        (8, {"dims": 6, "codes": "per-dimension", "codebook_entropy_weight": 0}),
    ],
)
def test_lfq_conforms_to_the_bottleneck_contract(dim, params):
    registry = Registry()
    registry.add_plugin(lfq, Provider("lfq", "laser", "test"))
    check_component("bottlenecks", "lfq", params, BuildContext(latent_dim=dim), registry)


def test_codes_are_the_signs_as_bits_or_one_index_first_dimension_least_significant():
    z = latents([[0.5, -1.0, 2.0], [-0.1, 0.3, -4.0]])
    index = build(3, dims=3).eval()(z)
    bits = build(3, dims=3, codes="per-dimension").eval()(z)
    assert bits.codes.indices.view(2, 3).tolist() == [[1, 0, 1], [0, 1, 0]]
    assert index.codes.indices.flatten().tolist() == [1 + 4, 2]
    assert index.quantized.view(3, 2).t().tolist() == [[1, -1, 1], [-1, 1, -1]]
    assert torch.equal(bits.quantized, index.quantized)


@pytest.mark.parametrize("codes", ["index", "per-dimension"])
def test_decode_of_encode_is_exactly_forwards_quantized_in_eval_mode(codes):
    torch.manual_seed(0)
    bottleneck = build(6, dims=6, codes=codes).eval()
    z = torch.randn(4, 6, 8, 8)
    encoded = bottleneck.encode(z)
    assert torch.equal(bottleneck.decode(encoded), bottleneck(z).quantized)
    limit = 64 if codes == "index" else 2
    assert ((encoded.indices >= 0) & (encoded.indices < limit)).all()
    if codes == "index":  # 2048 positions over 64 codes: all of them occur
        assert len(encoded.indices.unique()) == 64


def test_the_straight_through_gradient_is_exactly_the_upstream_gradient():
    torch.manual_seed(0)
    bottleneck = build(5, dims=5).train()
    z = torch.randn(2, 5, 4, 4, requires_grad=True)
    upstream = torch.randn(2, 5, 4, 4)
    (bottleneck(z).quantized * upstream).sum().backward()
    assert torch.equal(z.grad, upstream)


def test_entropy_terms_match_a_hand_computed_example():
    """Two positions in 2 dims at τ = 0.01: x = (0, 0) is equally far from all four codes, so
    q is uniform (entropy ln 4); x = (1, 1) sits on code (+1, +1), q one-hot (entropy 0). Mean
    per-sample entropy ln 2; the batch average puts 1/4 * 1/2 + 1/2 = 5/8 on (+1, +1) and 1/8
    on each other code. Commitment: x = (0, 0) quantizes to (-1, -1), mse (1 + 1 + 0 + 0) / 4."""
    bottleneck = build(
        2,
        dims=2,
        commitment_weight=0.25,
        sample_entropy_weight=0.3,
        codebook_entropy_weight=0.7,
        entropy_temperature=0.01,
    ).train()
    output = bottleneck(latents([[0.0, 0.0], [1.0, 1.0]]))
    sample = math.log(2)
    codebook = -(5 / 8 * math.log(5 / 8) + 3 / 8 * math.log(1 / 8))
    assert output.stats["sample_entropy"].item() == pytest.approx(sample, abs=1e-6)
    assert output.stats["codebook_entropy"].item() == pytest.approx(codebook, abs=1e-6)
    expected = 0.25 * 0.5 + 0.3 * sample - 0.7 * codebook
    assert output.loss.item() == pytest.approx(expected, abs=1e-6)


def brute_force_entropies(x: torch.Tensor, temperature: float) -> tuple[torch.Tensor, ...]:
    """MAGVIT-v2's definition in float64: q(c | x) = softmax over all 2^dims codes c in
    {-1, 1}^dims of -||x - c||² / τ; mean per-sample entropy and entropy of the mean."""
    dims = x.shape[1]
    codes = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=dims)), dtype=torch.float64)
    q = torch.softmax(-torch.cdist(x.double(), codes).square() / temperature, dim=1)
    sample = torch.special.entr(q).sum(1).mean()
    return sample, torch.special.entr(q.mean(0)).sum()


@pytest.mark.parametrize("temperature", [0.5, 0.05])
def test_entropy_terms_and_their_gradients_equal_a_brute_force_softmax_over_every_code(
    temperature,
):
    torch.manual_seed(0)
    bottleneck = build(4, dims=4, entropy_temperature=temperature).train()
    z = (0.3 * torch.randn(2, 4, 4, 4)).requires_grad_(True)
    entropies = bottleneck.entropies(z.permute(0, 2, 3, 1).reshape(-1, 4))
    (entropies["sample_entropy"] - 2 * entropies["codebook_entropy"]).backward()
    grad, z.grad = z.grad, None
    sample, codebook = brute_force_entropies(z.permute(0, 2, 3, 1).reshape(-1, 4), temperature)
    (sample - 2 * codebook).backward()
    torch.testing.assert_close(entropies["sample_entropy"].double(), sample)
    torch.testing.assert_close(entropies["codebook_entropy"].double(), codebook)
    torch.testing.assert_close(grad, z.grad, rtol=1e-4, atol=1e-5)


def test_saturated_probabilities_keep_the_loss_and_gradients_finite():
    """At τ = 0.01, x of a few units puts probabilities of exactly 0 and 1 in fp32."""
    bottleneck = build(8, dims=8).train()
    z = (50 * torch.randn(2, 8, 4, 4)).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = bottleneck(z)
    assert output.loss.dtype == torch.float32 and torch.isfinite(output.loss)
    (output.loss + output.quantized.float().sum()).backward()
    assert torch.isfinite(z.grad).all()


def test_the_penalty_prefers_committed_positions_spread_over_the_whole_codebook():
    """Each of the 16 codes of 4 dims once, every position on its code: per-sample entropy 0,
    codebook entropy ln 16. The same positions all on one code: both entropies 0. The same
    positions at 0, undecided: per-sample and codebook entropy ln 16."""
    bottleneck = build(
        4, dims=4, commitment_weight=0, sample_entropy_weight=1.0, codebook_entropy_weight=1.0
    ).train()
    spread = [list(code) for code in itertools.product([-1.0, 1.0], repeat=4)]
    losses = [
        bottleneck(latents(vectors)).loss.item()
        for vectors in (spread, [[1.0] * 4] * 16, [[0.0] * 4] * 16)
    ]
    assert losses == pytest.approx([-math.log(16), 0.0, 0.0], abs=1e-5)


def test_stats_report_usage_of_the_index_or_averaged_over_bits():
    z = latents([[1.0, 1.0], [1.0, -1.0]])
    index = build(2, dims=2).eval()(z).stats
    bits = build(2, dims=2, codes="per-dimension").eval()(z).stats
    assert index["used_codes"].item() == 2 and index["perplexity"].item() == pytest.approx(2)
    assert bits["used_codes"].item() == 1.5 and bits["perplexity"].item() == pytest.approx(1.5)


def test_a_codebook_too_large_to_handle_whole_is_refused_with_the_way_out(write_recipe):
    recipe = TINY_RECIPE.replace("{name: vq, codebook_size: 16}", "{name: lfq, dims: 18}")
    with pytest.raises(RecipeError, match=r"262,144 grid points.*at most 65,536.*per-dimension"):
        load_recipe(write_recipe(recipe))
    entropy = "{name: lfq, dims: 18, codes: per-dimension}"  # codebook_entropy_weight: 0.1
    recipe = TINY_RECIPE.replace("{name: vq, codebook_size: 16}", entropy)
    with pytest.raises(RecipeError, match=r"2\^18 codes.*codebook entropy.*dims <= 16"):
        load_recipe(write_recipe(recipe))
    bits = "{name: lfq, dims: 18, codes: per-dimension, codebook_entropy_weight: 0}"
    recipe = TINY_RECIPE.replace("{name: vq, codebook_size: 16}", bits)
    assert load_recipe(write_recipe(recipe)).bottleneck.config.dims == 18
    built = build(4, dims=18, codes="per-dimension", codebook_entropy_weight=0)
    assert built.code_spec().alphabet_sizes == [2] * 18
    assert built.decode(Codes(torch.ones(1, 1, 1, 18, dtype=torch.long))).shape == (1, 4, 1, 1)
