"""fp16 gradient-norm terms: the adaptive weight and the R1 penalty, whose gradients would
underflow in fp16, match their fp32 values when taken under the gradient scaler's scale."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from laser_core.training.adversarial import adaptive_weight, r1_penalty


def scale_of(scaler: torch.amp.GradScaler) -> torch.Tensor:
    return scaler.scale(torch.ones(()))


@pytest.fixture
def layer() -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(16, 16)


def generator_losses(layer: nn.Linear, x: torch.Tensor, fp16: bool):
    with torch.autocast("cpu", dtype=torch.float16, enabled=fp16):
        y = layer(x)
    # A small adversarial loss, as a well-trained discriminator gives: its gradient at each
    # element of y is 1e-3 / y.numel() = 1.5e-8, which fp16 rounds to zero.
    return y.float().square().mean(), -1e-3 * y.float().mean()


def test_adaptive_weight_under_fp16_needs_the_scaler_and_then_matches_fp32(layer):
    x = torch.rand(4096, 16) + 1  # positive: the per-element gradients add up in the norm
    expected = adaptive_weight(*generator_losses(layer, x, fp16=False), layer.weight)
    unscaled = adaptive_weight(*generator_losses(layer, x, fp16=True), layer.weight)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    scaled = adaptive_weight(*generator_losses(layer, x, fp16=True), layer.weight, scale_of(scaler))
    assert unscaled.item() == 1e4  # the fp16 gradient underflowed: the weight hit its clamp
    assert scaled.item() == pytest.approx(expected.item(), rel=1e-2)
    assert expected.item() < 2e3


def test_r1_penalty_under_fp16_matches_fp32_with_the_scaler():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Linear(16, 32), nn.Linear(32, 1))
    images = torch.randn(4, 16, requires_grad=True)

    def penalty(fp16: bool, scale=None):
        with torch.autocast("cpu", dtype=torch.float16, enabled=fp16):
            logits = 1e-7 * critic(images)  # gradients of ~1e-8 per pixel: fp16 rounds to zero
        return r1_penalty(logits.float(), images, scale)

    expected = penalty(False)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    assert penalty(True).item() == 0.0
    assert penalty(True, scale_of(scaler)).item() == pytest.approx(expected.item(), rel=1e-2)


def test_an_overflowing_scale_leaves_the_adaptive_weight_finite(layer):
    # The scaler skips such a step; the loss it multiplies must still be finite, or the loop
    # would stop as diverged.
    x = torch.rand(4096, 16) + 1
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)
    weight = adaptive_weight(*generator_losses(layer, x, fp16=True), layer.weight, scale_of(scaler))
    assert torch.isfinite(weight)
