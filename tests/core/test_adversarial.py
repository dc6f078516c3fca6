"""The adversarial step as VQGAN defines it: each half moves only its own network, nothing
happens before the start step, and the adaptive weight is the ratio of gradient norms."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from accelerate import Accelerator
from torch import nn
from torch.nn import functional as F

from laser_core.assembly.build import build_data, build_discriminator, build_model
from laser_core.errors import LaserError
from laser_core.recipes.model import load_recipe
from laser_core.training.adversarial import (
    MAX_ADAPTIVE_WEIGHT,
    Adversary,
    adaptive_weight,
    hinge_discriminator_loss,
    hinge_generator_loss,
    last_weight,
    non_saturating_discriminator_loss,
    non_saturating_generator_loss,
    prepare_adversary,
    r1_penalty,
)
from tests.sync_counter import SyncCounter

START = 2
GAN_RECIPE = f"""
data: {{name: photo-patches, size: 16, train_patches: 8, val_patches: 8, batch_size: 4}}
encoder: {{name: conv, channels: [8], downsamplings: 1, latent_dim: 4}}
bottleneck: {{name: vq, codebook_size: 8, kmeans_init: false}}
decoder: {{name: conv, channels: [8]}}
discriminator: {{name: patchgan, layers: 2, channels: 8, start_step: {START}, r1_weight: 1.0}}
train: {{lr: 0.01}}
"""


@dataclass
class Gan:
    model: Any
    optimizer: Any
    adversary: Adversary
    accelerator: Accelerator
    images: torch.Tensor


@pytest.fixture
def gan(write_recipe) -> Gan:
    recipe = load_recipe(write_recipe(GAN_RECIPE))
    splits = build_data(recipe)
    torch.manual_seed(0)
    model, context = build_model(recipe, splits)
    accelerator = Accelerator()
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.train.lr)
    model, optimizer = accelerator.prepare(model, optimizer)
    discriminator = build_discriminator(recipe, context)
    adversary = prepare_adversary(recipe, discriminator, accelerator, model.decoder)
    images = torch.stack([splits.train[i]["image"] for i in range(4)])
    return Gan(model, optimizer, adversary, accelerator, images)


def snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def changed(before: dict[str, torch.Tensor], module: nn.Module) -> set[str]:
    return {name for name, p in module.named_parameters() if not torch.equal(before[name], p)}


def generator_step(gan: Gan, step: int) -> torch.Tensor:
    """What the training loop's generator half does: returns the adversarial weight."""
    reconstructions, output = gan.model(gan.images)
    recon = F.l1_loss(reconstructions, gan.images)
    adversarial, weight = gan.adversary.generator_term(reconstructions, recon, step)
    gan.accelerator.backward(recon + adversarial + output.loss)
    gan.optimizer.step()
    gan.optimizer.zero_grad(set_to_none=True)
    return weight


def test_generator_step_changes_only_generator_weights(gan: Gan):
    discriminator = gan.adversary.module
    generator_before, discriminator_before = snapshot(gan.model), snapshot(discriminator)
    weight = generator_step(gan, START)
    assert weight > 0
    last_layer = next(n for n, p in gan.model.named_parameters() if p is gan.adversary.last_layer)
    assert last_layer in changed(generator_before, gan.model)
    assert not changed(discriminator_before, discriminator)
    assert all(p.grad is None for p in discriminator.parameters())
    assert all(p.requires_grad for p in discriminator.parameters())


def test_discriminator_step_changes_only_discriminator_weights(gan: Gan):
    discriminator = gan.adversary.module
    generator_before, discriminator_before = snapshot(gan.model), snapshot(discriminator)
    reconstructions, _ = gan.model(gan.images)
    logs = gan.adversary.discriminator_step(gan.images, reconstructions, START)
    assert "net.0.weight" in changed(discriminator_before, discriminator)
    assert not changed(generator_before, gan.model)
    assert all(p.grad is None for p in gan.model.parameters())
    assert logs["disc"] > 0 and logs["r1"] > 0


def test_adversarial_weight_is_zero_before_the_start_step(gan: Gan):
    discriminator_before = snapshot(gan.adversary.module)
    for step in range(START):
        assert generator_step(gan, step) == 0
        reconstructions, _ = gan.model(gan.images)
        logs = gan.adversary.discriminator_step(gan.images, reconstructions, step)
        assert logs == {"disc": 0, "r1": 0}
    assert not changed(discriminator_before, gan.adversary.module)
    assert generator_step(gan, START) > 0


def test_the_adversarial_terms_never_wait_on_the_device(gan: Gan):
    reconstructions, _ = gan.model(gan.images)
    recon = F.l1_loss(reconstructions, gan.images)
    with SyncCounter() as syncs:
        gan.adversary.generator_term(reconstructions, recon, START)
        gan.adversary.discriminator_step(gan.images, reconstructions, START)
    assert syncs.total == 0, syncs.report()


def test_adaptive_weight_matches_a_hand_computation():
    """Decoder y = W x. recon = |y - t|^2 has dW = 2 (y - t) x^T; adversarial = -c sum(y) has
    dW = -c 1 x^T; the norms of these outer products are products of vector norms."""
    decoder = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        decoder.weight.copy_(torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]]))
    x, t, c = torch.tensor([1.0, 2.0, -1.0]), torch.tensor([0.3, -0.7]), 0.25
    y = decoder(x)
    recon, adversarial = (y - t).square().sum(), -c * y.sum()
    expected = 2 * (y - t).norm() * x.norm() / (c * math.sqrt(2) * x.norm() + 1e-4)
    weight = adaptive_weight(recon, adversarial, decoder.weight)
    assert weight.item() == pytest.approx(expected.item(), rel=1e-6)
    assert weight.dtype == torch.float32 and not weight.requires_grad


def test_adaptive_weight_is_clamped_when_the_adversarial_gradient_vanishes():
    decoder = nn.Linear(3, 2, bias=False)
    nn.init.ones_(decoder.weight)
    y = decoder(torch.ones(3))  # recon gradient norm 2 |y| |x| = 25.5; adversarial ~1e-12
    weight = adaptive_weight(y.square().sum(), 1e-12 * y.sum(), decoder.weight)
    assert weight.item() == MAX_ADAPTIVE_WEIGHT


def test_r1_penalty_of_a_linear_critic_is_its_squared_weight_norm():
    w = torch.randn(1, 2, 3, 3)
    images = torch.randn(4, 2, 3, 3, requires_grad=True)
    logits = (images * w).sum((1, 2, 3))
    assert r1_penalty(logits, images).item() == pytest.approx(w.square().sum().item(), rel=1e-5)


def test_gan_losses_on_known_logits():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    # hinge: relu(1 - real) = [0, 0.5], relu(1 + fake) = [0, 1]
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx((0.25 + 0.5) / 2)
    assert hinge_generator_loss(fake).item() == pytest.approx(1.0)
    softplus = lambda v: math.log1p(math.exp(v))  # noqa: E731
    expected = ((softplus(-2) + softplus(-0.5)) / 2 + (softplus(-2) + softplus(0)) / 2) / 2
    assert non_saturating_discriminator_loss(real, fake).item() == pytest.approx(expected)
    assert non_saturating_generator_loss(fake).item() == pytest.approx(
        (softplus(2) + softplus(0)) / 2
    )


def test_adaptive_weight_needs_a_decoder_with_weights():
    with pytest.raises(LaserError, match="decoder 'identity' has none"):
        last_weight(nn.PixelShuffle(2), "identity")
    conv = nn.Sequential(nn.Conv2d(4, 8, 3), nn.GroupNorm(2, 8), nn.Conv2d(8, 3, 3))
    assert last_weight(conv, "conv") is conv[2].weight
