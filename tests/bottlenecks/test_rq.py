"""rq: each level refines the previous ones, the output is the sum of one code per level, and
any prefix of the levels decodes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from laser_core.plugin.contracts import BuildContext
from laser_core.plugin.registry import Provider, Registry
from laser_core.testing import check_component
from laser_plugins.bottlenecks.codebooks import rq
from laser_plugins.bottlenecks.codebooks.rq import ResidualQuantizer, RQConfig


def build(dim: int = 8, **params) -> ResidualQuantizer:
    return ResidualQuantizer(RQConfig(**params), BuildContext(latent_dim=dim))


@pytest.mark.parametrize(
    "params",
    [
        {"levels": 3, "codebook_size": 16},
        {"levels": 3, "codebook_size": [16, 8, 4], "update": "gradient"},
        {"levels": 3, "codebook_size": 16, "shared_codebook": True},
        {"levels": 2, "codebook_size": 16, "quantize_dropout": 0.5, "kmeans_init": False},
    ],
)
def test_rq_conforms_to_the_bottleneck_contract(params):
    registry = Registry()
    registry.add_plugin(rq, Provider("rq", "laser", "test"))
    check_component("bottlenecks", "rq", params, BuildContext(latent_dim=8), registry)


@pytest.mark.parametrize("shared_codebook", [False, True])
def test_reconstruction_error_does_not_grow_as_levels_are_added(shared_codebook):
    torch.manual_seed(0)
    bottleneck = build(levels=4, codebook_size=32, shared_codebook=shared_codebook)
    z = torch.randn(8, 8, 8, 8)
    bottleneck.train()(z)  # residual k-means on the first batch
    bottleneck.eval()
    codes = bottleneck.encode(z)
    errors = [(bottleneck.decode(codes, levels) - z).square().mean() for levels in range(1, 5)]
    assert all(later <= earlier for earlier, later in itertools.pairwise(errors)), errors
    assert errors[-1] < 0.6 * errors[0]


def test_quantized_is_the_sum_of_one_code_per_level():
    torch.manual_seed(0)
    bottleneck = build(levels=3, codebook_size=[16, 8, 4]).train()
    z = torch.randn(2, 8, 4, 4)
    bottleneck(z)
    bottleneck.eval()
    output = bottleneck(z)
    indices = output.codes.indices
    total = sum(
        bottleneck.codebooks[level].weight[indices[..., level]] for level in range(3)
    ).permute(0, 3, 1, 2)
    torch.testing.assert_close(output.quantized, total, rtol=0, atol=0)


def test_quantize_dropout_reconstructs_training_batches_from_prefixes_of_the_levels():
    torch.manual_seed(0)
    bottleneck = build(
        levels=4, codebook_size=8, update="gradient", kmeans_init=False, quantize_dropout=1.0
    ).train()
    z = torch.randn(2, 8, 4, 4)
    prefixes = set()
    for _ in range(12):
        output = bottleneck(z)
        matching = [
            levels
            for levels in range(1, 5)
            if torch.equal(output.quantized, bottleneck.decode(output.codes, levels))
        ]
        assert len(matching) == 1
        prefixes |= set(matching)
    assert len(prefixes) > 1
    bottleneck.eval()
    assert torch.equal(bottleneck(z).quantized, bottleneck.decode(bottleneck.encode(z)))


def test_shared_codebook_is_one_codebook_for_every_level():
    bottleneck = build(levels=3, codebook_size=16, shared_codebook=True)
    assert len(bottleneck.codebooks) == 1
    assert bottleneck.code_spec().alphabet_sizes == [16, 16, 16]


def test_stats_per_level_are_the_usage_of_that_levels_codes():
    torch.manual_seed(0)
    sizes = [16, 8, 4]
    bottleneck = build(levels=3, codebook_size=sizes, dead_code_after=1).train()
    z = torch.randn(4, 8, 4, 4)
    bottleneck(z)  # k-means on the first batch
    output = bottleneck(z[:1, :, :2, :2])  # 4 positions: most codes go unused, so dead
    stats = {key: value.item() for key, value in output.stats.items()}
    assert set(stats) == {
        f"{key}_l{level}"
        for key in ("perplexity", "used_codes", "dead_codes")
        for level in range(3)
    }
    for level, size in enumerate(sizes):
        counts = np.bincount(output.codes.indices[..., level].numpy().ravel(), minlength=size)
        p = counts[counts > 0] / counts.sum()
        assert stats[f"perplexity_l{level}"] == pytest.approx(np.exp(-(p * np.log(p)).sum()))
        assert stats[f"used_codes_l{level}"] == np.count_nonzero(counts)
        # dead after one batch unused: the codes this batch did not choose
        assert stats[f"dead_codes_l{level}"] == size - np.count_nonzero(counts)
    assert stats["dead_codes_l0"] >= 12  # 16 codes, 4 positions


def test_config_rejects_codebook_sizes_that_do_not_fit_the_levels():
    with pytest.raises(ValidationError, match="2 sizes for 3 levels"):
        RQConfig(levels=3, codebook_size=[16, 8])
    with pytest.raises(ValidationError, match="shared codebook has one size"):
        RQConfig(levels=2, codebook_size=[16, 8], shared_codebook=True)


def test_decode_rejects_a_prefix_longer_than_the_levels():
    bottleneck = build(levels=2, codebook_size=8).eval()
    codes = bottleneck.encode(torch.randn(1, 8, 2, 2))
    with pytest.raises(ValueError, match=r"1\.\.2"):
        bottleneck.decode(codes, levels=3)
