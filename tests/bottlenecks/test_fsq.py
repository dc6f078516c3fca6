"""fsq: the nearest point of the implicit grid, the paper's bound with the half-level offset for
even levels, straight-through gradients, and codes per dimension or as one index."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from laser_core import BuildContext, Codes, RecipeError, load_recipe
from laser_core.plugin.registry import Provider, Registry
from laser_core.testing import check_component
from laser_plugins.bottlenecks import fsq
from laser_plugins.bottlenecks.fsq import FiniteScalarQuantizer, FSQConfig
from tests.helpers import TINY_RECIPE


def build(dim: int, levels: list[int], codes: str = "index") -> FiniteScalarQuantizer:
    config = FSQConfig(levels=levels, codes=codes)
    return FiniteScalarQuantizer(config, BuildContext(latent_dim=dim))


def paper_bound(z: torch.Tensor, levels: list[int]) -> torch.Tensor:
    """Appendix A.1 of the paper for vectors z (N, len(levels)), written out in float64 (with
    atanh for the shift, which centres z = 0 on level 0)."""
    levels_ = torch.tensor(levels, dtype=torch.float64)
    half = (levels_ - 1) * (1 - 1e-3) / 2
    offset = torch.where(levels_ % 2 == 0, 0.5, 0.0)
    return torch.tanh(z.double() + torch.atanh(offset / half)) * half - offset


def grid(levels: list[int]) -> torch.Tensor:
    """Every grid point (product(levels), len(levels)) as integers from -(L // 2), in the
    order of the combined index (first dimension fastest)."""
    axes = [range(-(level // 2), level - level // 2) for level in levels]
    points = [point[::-1] for point in itertools.product(*reversed(axes))]
    return torch.tensor(points, dtype=torch.float64)


@pytest.mark.parametrize(
    ("dim", "params"),
    [
        (3, {"levels": [8, 6, 5]}),
        (8, {"levels": [8, 6, 5]}),
        (4, {"levels": [4, 4, 4, 4], "codes": "per-dimension"}),
        (8, {"levels": [7, 5, 5, 5, 5], "codes": "per-dimension"}),
    ],
)
def test_fsq_conforms_to_the_bottleneck_contract(dim, params):
    registry = Registry()
    registry.add_plugin(fsq, Provider("fsq", "laser", "test"))
    check_component("bottlenecks", "fsq", params, BuildContext(latent_dim=dim), registry)


@pytest.mark.parametrize("levels", [[8, 6, 5], [4, 4, 4, 4], [3, 7]])
@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16-autocast"])
def test_fsq_picks_the_brute_force_nearest_grid_point(levels, autocast):
    torch.manual_seed(0)
    bottleneck = build(len(levels), levels).eval()
    z = 2 * torch.randn(4, len(levels), 8, 8)
    vectors = z.permute(0, 2, 3, 1).reshape(-1, len(levels))
    points = grid(levels)
    nearest = torch.cdist(paper_bound(vectors, levels), points).argmin(1)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        output = bottleneck(z)
        encoded = bottleneck.encode(z)
    assert torch.equal(output.codes.indices.flatten(), nearest)
    assert torch.equal(encoded.indices.flatten(), nearest)
    assert len(nearest.unique()) > len(points) // 2  # z spreads over the grid
    half_width = torch.tensor([level // 2 for level in levels])
    expected = (points[nearest] / half_width).float()
    assert torch.equal(output.quantized.permute(0, 2, 3, 1).reshape(-1, len(levels)), expected)


def test_even_levels_are_offset_by_half_a_level_so_zero_is_a_level_and_every_level_is_reached():
    bottleneck = build(2, [4, 5], codes="per-dimension").eval()
    zero = bottleneck(torch.zeros(1, 2, 1, 1))
    assert zero.quantized.flatten().tolist() == [0.0, 0.0]
    assert zero.codes.indices.flatten().tolist() == [2, 2]  # the digit of level 0: L // 2
    z = torch.linspace(-6, 6, 101).view(1, 1, 1, 101).expand(1, 2, 1, 101)
    output = bottleneck(z)
    assert output.quantized[0, 0].unique().tolist() == [-1.0, -0.5, 0.0, 0.5]  # 4: -2..1 / 2
    assert output.quantized[0, 1].unique().tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert [len(output.codes.indices[..., i].unique()) for i in range(2)] == [4, 5]


def test_the_straight_through_gradient_is_the_upstream_gradient_through_the_bound():
    """Rounding passes the upstream gradient unchanged; only the tanh bound and the scaling to
    [-1, 1] shape it: dq/dz = (1 - tanh²(z + shift)) * half_range / (L // 2)."""
    torch.manual_seed(0)
    levels = [8, 6, 5]
    bottleneck = build(3, levels).train()
    z = torch.randn(2, 3, 4, 4, requires_grad=True)
    upstream = torch.randn(2, 3, 4, 4)
    (bottleneck(z).quantized * upstream).sum().backward()
    shape = (1, 3, 1, 1)
    half = ((torch.tensor(levels) - 1) * (1 - 1e-3) / 2).view(shape)
    offset = torch.tensor([0.5, 0.5, 0.0]).view(shape)
    slope = 1 - torch.tanh(z.detach() + torch.atanh(offset / half)).square()
    expected = upstream * slope * half / torch.tensor([4.0, 3.0, 2.0]).view(shape)
    torch.testing.assert_close(z.grad, expected, rtol=1e-6, atol=1e-7)

    # The rounding step alone: the gradient at the bounded values is upstream / (L // 2).
    x = torch.randn(32, 3)
    bounded = bottleneck.bound(x).requires_grad_(True)
    rounded = bounded.detach().round()
    quantized = (rounded + (bounded - bounded.detach())) / bottleneck.half_width
    upstream = torch.randn(32, 3)
    (quantized * upstream).sum().backward()
    assert torch.equal(bounded.grad, upstream / bottleneck.half_width)


@pytest.mark.parametrize("codes", ["index", "per-dimension"])
def test_decode_of_encode_is_exactly_forwards_quantized_in_eval_mode(codes):
    torch.manual_seed(0)
    bottleneck = build(3, [8, 6, 5], codes).eval()
    z = 3 * torch.randn(4, 3, 8, 8)
    assert torch.equal(bottleneck.decode(bottleneck.encode(z)), bottleneck(z).quantized)


def test_the_index_numbers_grid_points_first_dimension_fastest_and_codes_stay_in_range():
    torch.manual_seed(0)
    per_dimension = build(3, [8, 6, 5], "per-dimension").eval()
    index = build(3, [8, 6, 5]).eval()
    z = 3 * torch.randn(8, 3, 8, 8)
    digits = per_dimension.encode(z).indices
    combined = index.encode(z).indices
    assert digits.shape == (8, 8, 8, 3) and combined.shape == (8, 8, 8, 1)
    assert ((digits >= 0) & (digits < torch.tensor([8, 6, 5]))).all()
    assert (combined >= 0).all() and (combined < 240).all()
    assert torch.equal(combined[..., 0], digits[..., 0] + 8 * digits[..., 1] + 48 * digits[..., 2])
    assert torch.equal(index.decode(Codes(combined)), per_dimension.decode(Codes(digits)))


def test_a_projection_maps_any_latent_dim_onto_the_levels():
    bottleneck = build(16, [8, 6, 5])
    assert bottleneck.project_in.weight.shape == (3, 16)
    assert bottleneck.project_out.weight.shape == (16, 3)
    assert bottleneck(torch.randn(2, 16, 4, 4)).quantized.shape == (2, 16, 4, 4)
    assert not list(build(3, [8, 6, 5]).parameters())  # nothing to learn without one


def test_stats_report_usage_of_the_index_or_averaged_over_dimensions():
    z = torch.zeros(2, 2, 4, 4)  # every position at the grid's centre: one code
    index = build(2, [5, 3]).eval()(z).stats
    assert index["perplexity"].item() == pytest.approx(1.0) and index["used_codes"].item() == 1
    z[0, 0] = 5.0  # dimension 0 now at two levels, half of the positions each
    per_dimension = build(2, [5, 3], "per-dimension").eval()(z).stats
    assert per_dimension["used_codes"].item() == pytest.approx(1.5)
    assert per_dimension["perplexity"].item() == pytest.approx(1.5)  # (2 + 1) / 2


def test_levels_of_two_are_refused_with_the_reason(write_recipe):
    recipe = TINY_RECIPE.replace("{name: vq, codebook_size: 16}", "{name: fsq, levels: [2, 5]}")
    with pytest.raises(RecipeError, match=r"every level must be 3 or more.*use the lfq"):
        load_recipe(write_recipe(recipe))


def test_an_index_beyond_an_entropy_coder_alphabet_is_refused_but_per_dimension_codes_are_not(
    write_recipe,
):
    levels = [8, 8, 8, 8, 8, 8]  # 2^18 grid points
    block = f"{{name: fsq, levels: {levels}}}"
    recipe = TINY_RECIPE.replace("{name: vq, codebook_size: 16}", block)
    with pytest.raises(
        RecipeError, match=r"262,144 grid points.*at most 65,536.*codes: per-dimension"
    ):
        load_recipe(write_recipe(recipe))
    per_dimension = recipe.replace(block, f"{{name: fsq, levels: {levels}, codes: per-dimension}}")
    assert load_recipe(write_recipe(per_dimension)).bottleneck.config.levels == levels
    assert math.prod(FSQConfig(levels=[8, 8, 8, 8, 4, 4]).levels) == 2**16  # the largest index
