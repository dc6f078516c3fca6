"""vq: nearest-code assignment in fp32 under any autocast, EMA and gradient codebooks, k-means
initialisation and dead-code revival that keep the codebook in use."""

from __future__ import annotations

import pytest
import torch
import yaml

from laser_core.assembly.build import build_component
from laser_core.errors import RecipeError
from laser_core.plugin.contracts import BuildContext
from laser_core.plugin.registry import Provider, Registry
from laser_core.recipes.model import load_recipe
from laser_core.testing import check_component
from laser_plugins.bottlenecks.codebooks import vq
from laser_plugins.bottlenecks.codebooks.vq import VectorQuantizer, VQConfig
from tests.helpers import TINY_RECIPE


def build(dim: int = 8, **params) -> VectorQuantizer:
    return VectorQuantizer(VQConfig(**params), BuildContext(latent_dim=dim))


def clustered_latents(
    centers: torch.Tensor, batch: int = 8, size: int = 4, spread: float = 0.05
) -> torch.Tensor:
    """Latents (batch, dim, size, size) whose vectors lie near randomly chosen ``centers``."""
    which = torch.randint(len(centers), (batch, size, size))
    vectors = centers[which] + spread * torch.randn(batch, size, size, centers.shape[1])
    return vectors.permute(0, 3, 1, 2)


def codes_in_use(bottleneck: VectorQuantizer, z: torch.Tensor) -> int:
    bottleneck.eval()
    return bottleneck.encode(z).indices.unique().numel()


def train(bottleneck: VectorQuantizer, batches: list[torch.Tensor], lr: float = 0.5) -> list:
    """The trainer's steps: forward, backward, optimizer step, after_optimizer_step."""
    bottleneck.train()
    parameters = list(bottleneck.parameters())
    optimizer = torch.optim.SGD(parameters, lr=lr) if parameters else None
    revived = []
    for z in batches:
        output = bottleneck(z)
        if optimizer:
            optimizer.zero_grad()
            output.loss.backward()
            optimizer.step()
        revived += bottleneck.after_optimizer_step()
    return revived


@pytest.mark.parametrize(
    "params",
    [
        {"codebook_size": 16},
        {"codebook_size": 16, "update": "gradient"},
        {"codebook_size": 16, "normalize": True},
        {"codebook_size": 64, "kmeans_init": False},
    ],
)
def test_vq_conforms_to_the_bottleneck_contract(params):
    registry = Registry()
    registry.add_plugin(vq, Provider("vq", "laser", "test"))
    check_component("bottlenecks", "vq", params, BuildContext(latent_dim=8), registry)


@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16-autocast"])
def test_vq_picks_the_brute_force_nearest_code(autocast):
    torch.manual_seed(0)
    bottleneck = build(codebook_size=256, kmeans_init=False).eval()
    z = torch.randn(8, 8, 16, 16)
    vectors = z.permute(0, 2, 3, 1).reshape(-1, 8)
    codebook = bottleneck.codebook.weight
    expected = torch.cdist(vectors, codebook, compute_mode="donot_use_mm_for_euclid_dist")
    expected = expected.argmin(1).view(8, 16, 16, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        output = bottleneck(z)
        encoded = bottleneck.encode(z)
    assert torch.equal(output.codes.indices, expected)
    assert torch.equal(encoded.indices, expected)
    assert output.quantized.dtype == torch.float32
    assert torch.equal(output.quantized, codebook[expected[..., 0]].permute(0, 3, 1, 2))


def test_vq_returns_quantized_in_the_dtype_of_bf16_latents():
    torch.manual_seed(0)
    bottleneck = build(codebook_size=64, kmeans_init=False).eval()
    z = torch.randn(2, 8, 4, 4).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = bottleneck(z)
    vectors = z.float().permute(0, 2, 3, 1).reshape(-1, 8)
    expected = torch.cdist(vectors, bottleneck.codebook.weight).argmin(1)
    assert output.quantized.dtype == torch.bfloat16
    assert torch.equal(output.codes.indices.flatten(), expected)


def brute_force_vq(z: torch.Tensor, weight: torch.Tensor, commitment_weight: float, ema: bool):
    """The textbook step with a dense (N, K) distance matrix and a one-hot lookup: codes,
    quantized = codes + (x - sg(x)), loss β‖x - sg(codes)‖² (+ ‖sg(x) - codes‖² by gradient)."""
    x = z.float().permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    indices = torch.cdist(x.detach().double(), weight.detach().double()).argmin(1)
    codes = torch.nn.functional.one_hot(indices, len(weight)).float() @ weight
    loss = commitment_weight * torch.nn.functional.mse_loss(x, codes.detach())
    if not ema:
        loss = loss + torch.nn.functional.mse_loss(codes, x.detach())
    quantized = (codes + (x - x.detach())).view(z.shape[0], *z.shape[2:], -1).permute(0, 3, 1, 2)
    return indices, quantized, loss


@pytest.mark.parametrize("update", ["ema", "gradient"])
@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16-autocast"])
def test_vq_forward_and_gradients_equal_a_brute_force_reference(update, autocast):
    torch.manual_seed(0)
    bottleneck = build(dim=16, codebook_size=128, kmeans_init=False, update=update).train()
    weight = bottleneck.codebook.weight.detach().clone().requires_grad_(update == "gradient")
    z = torch.randn(4, 16, 8, 8, requires_grad=True)
    upstream = torch.randn(4, 16, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        output = bottleneck(z)
    ((output.quantized * upstream).sum() + 3 * output.loss).backward()
    z_grad, z.grad = z.grad, None
    indices, quantized, loss = brute_force_vq(z, weight, 0.25, ema=update == "ema")
    ((quantized * upstream).sum() + 3 * loss).backward()
    assert torch.equal(output.codes.indices.flatten(), indices)
    assert torch.equal(output.quantized, quantized)
    torch.testing.assert_close(output.loss, loss)
    torch.testing.assert_close(z_grad, z.grad)
    if update == "gradient":
        torch.testing.assert_close(bottleneck.codebook.weight.grad, weight.grad)


@pytest.mark.parametrize(
    "block", [{"name": "vq", "codebook_size": 16}, {"name": "rq", "levels": 3, "codebook_size": 8}]
)
def test_straight_through_passes_the_decoder_gradient_to_the_encoder_unchanged(block):
    """vq, and rq, which sums one vq codebook's codes per level."""
    torch.manual_seed(0)
    bottleneck = build_component("bottlenecks", block, BuildContext(latent_dim=8)).train()
    z = torch.randn(2, 8, 4, 4, requires_grad=True)
    upstream = torch.randn(2, 8, 4, 4)
    (bottleneck(z).quantized * upstream).sum().backward()
    assert torch.equal(z.grad, upstream)


def test_ema_update_moves_codes_toward_the_means_of_their_latents():
    torch.manual_seed(0)
    bottleneck = build(dim=2, codebook_size=8, kmeans_init=False, decay=0.5, epsilon=1e-9)
    before = bottleneck.codebook.weight.clone()
    z = torch.randn(4, 2, 8, 8)
    vectors = z.permute(0, 2, 3, 1).reshape(-1, 2)
    assigned = torch.cdist(vectors, before).argmin(1)
    bottleneck.train()(z)
    after = bottleneck.codebook.weight
    for code in range(8):
        members = vectors[assigned == code]
        if len(members) == 0:
            torch.testing.assert_close(after[code], before[code], rtol=1e-4, atol=1e-6)
            continue
        mean = members.mean(0)
        assert (after[code] - mean).norm() < (before[code] - mean).norm()
        # Each code started weighing as one latent; decay 0.5 averages old and new sums.
        expected = (0.5 * before[code] + 0.5 * members.sum(0)) / (0.5 + 0.5 * len(members))
        torch.testing.assert_close(after[code], expected, rtol=1e-4, atol=1e-6)


def test_kmeans_init_puts_codes_in_use_on_clusters_far_from_the_initial_codebook():
    torch.manual_seed(0)
    centers = 20 + 3 * torch.randn(8, 8)
    z = clustered_latents(centers, batch=16)
    used = {}
    for kmeans_init in (False, True):
        bottleneck = build(codebook_size=32, kmeans_init=kmeans_init, update="gradient")
        train(bottleneck, [z], lr=0.0)
        used[kmeans_init] = codes_in_use(bottleneck, z)
    assert used[True] >= 8 > used[False]


@pytest.mark.parametrize("update", ["ema", "gradient"])
def test_dead_code_revival_keeps_codes_in_use_after_the_data_shifts(update):
    torch.manual_seed(0)
    before, after = 3 * torch.randn(8, 8), 30 + 3 * torch.randn(16, 8)
    batches = [clustered_latents(before) for _ in range(5)]
    batches += [clustered_latents(after) for _ in range(10)]
    probe = clustered_latents(after, batch=32)
    used = {}
    for revive in (False, True):
        torch.manual_seed(1)
        bottleneck = build(
            codebook_size=32, update=update, dead_code_after=3, revive_dead_codes=revive
        )
        train(bottleneck, batches)
        used[revive] = codes_in_use(bottleneck, probe)
    assert used[True] >= 12 and used[True] > 2 * used[False]


def test_gradient_revival_returns_rows_for_the_trainer_to_reset():
    torch.manual_seed(0)
    bottleneck = build(codebook_size=16, kmeans_init=False, update="gradient", dead_code_after=1)
    z = clustered_latents(10 + torch.randn(4, 8))
    revived = train(bottleneck, [z], lr=0.0)
    assert len(revived) == 1
    parameter, rows = revived[0]
    assert parameter is bottleneck.codebook.weight and rows.dtype == torch.bool and rows.any()
    vectors = z.permute(0, 2, 3, 1).reshape(-1, 8)
    assert (parameter[rows, None] == vectors).all(2).any(1).all()


def test_ema_revival_needs_no_optimizer_reset():
    torch.manual_seed(0)
    bottleneck = build(codebook_size=16, kmeans_init=False, dead_code_after=1)
    assert train(bottleneck, [clustered_latents(10 + torch.randn(4, 8))]) == []
    assert bottleneck.codebook.unused_steps.max() == 0


def test_normalized_vq_picks_the_code_of_highest_cosine():
    torch.manual_seed(0)
    bottleneck = build(codebook_size=64, kmeans_init=False, normalize=True).eval()
    z = torch.randn(2, 8, 8, 8)
    vectors = z.permute(0, 2, 3, 1).reshape(-1, 8)
    codebook = bottleneck.codebook.weight
    cosine = torch.nn.functional.cosine_similarity(vectors[:, None], codebook[None], dim=2)
    output = bottleneck(z)
    assert torch.equal(output.codes.indices.flatten(), cosine.argmax(1))
    torch.testing.assert_close(output.quantized.norm(dim=1), torch.ones(2, 8, 8))


def test_stats_report_perplexity_and_usage():
    bottleneck = build(codebook_size=16, kmeans_init=False).eval()
    stats = bottleneck(torch.ones(2, 8, 4, 4)).stats
    assert stats["perplexity"].item() == pytest.approx(1.0)
    assert stats["used_codes"].item() == 1
    assert stats["dead_codes"].item() == 0


def test_a_loaded_codebook_is_not_reinitialized_by_kmeans():
    torch.manual_seed(0)
    trained = build(codebook_size=16, update="gradient")
    train(trained, [clustered_latents(torch.randn(4, 8))], lr=0.0)
    loaded = build(codebook_size=16, update="gradient")
    loaded.load_state_dict(trained.state_dict())
    loaded.train()(clustered_latents(50 + torch.randn(4, 8)))
    assert torch.equal(loaded.codebook.weight, trained.codebook.weight)


def test_an_ema_setting_under_gradient_updates_is_refused_not_ignored(write_recipe):
    recipe = TINY_RECIPE.replace(
        "{name: vq, codebook_size: 16}",
        "{name: vq, codebook_size: 16, update: gradient, decay: 0.9}",
    )
    with pytest.raises(RecipeError, match="decay applies only to update: ema"):
        load_recipe(write_recipe(recipe))
    # Even the default value, written out, is refused: it would do nothing.
    with pytest.raises(RecipeError, match="decay applies only to update: ema"):
        load_recipe(write_recipe(recipe.replace("decay: 0.9", "decay: 0.99")))
    resolved = load_recipe(write_recipe(recipe.replace(", decay: 0.9", ""))).resolved()
    assert resolved["bottleneck"]["decay"] is None  # "the default of its mode"; it reloads
    load_recipe(write_recipe(yaml.safe_dump(resolved), "resolved.yaml"))
