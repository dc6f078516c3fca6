"""Adversarial training as VQGAN does it: discriminator and generator losses (hinge or
non-saturating), the R1 penalty, the adaptive weight, and :class:`Adversary`, which owns the
discriminator and its optimizer so that the training loop makes two calls per micro-batch."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from accelerate import Accelerator
from torch import nn
from torch.nn import functional as F

from laser_core.errors import LaserError
from laser_core.plugin.contracts import DiscriminatorConfig
from laser_core.recipes.model import Recipe

MAX_ADAPTIVE_WEIGHT = 1e4
"""VQGAN's clamp: a vanishing adversarial gradient must not blow the weight up."""


def hinge_discriminator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Logits of real and reconstructed images, any shape -> scalar."""
    return (F.relu(1 - real).mean() + F.relu(1 + fake).mean()) / 2


def hinge_generator_loss(fake: torch.Tensor) -> torch.Tensor:
    return -fake.mean()


def non_saturating_discriminator_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits: real -> 1, fake -> 0."""
    return (F.softplus(-real).mean() + F.softplus(fake).mean()) / 2


def non_saturating_generator_loss(fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake).mean()


GanLoss = tuple[
    Callable[[torch.Tensor, torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]
]
GAN_LOSSES: dict[str, GanLoss] = {
    "hinge": (hinge_discriminator_loss, hinge_generator_loss),
    "non-saturating": (non_saturating_discriminator_loss, non_saturating_generator_loss),
}
"""(discriminator loss, generator loss) for each ``discriminator.loss``."""


def r1_penalty(
    real_logits: torch.Tensor, real_images: torch.Tensor, scale: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean over the batch of the squared norm of d(sum of logits)/d(image): (B, ...) -> ().
    ``scale``: the gradient scaler's scale under fp16, applied to the logits before the
    gradient is taken and removed in fp32 after, so fp16 gradients do not underflow."""
    scale = torch.ones((), device=real_logits.device) if scale is None else scale
    (gradient,) = torch.autograd.grad(real_logits.sum() * scale, real_images, create_graph=True)
    return (gradient.float() / scale).square().flatten(1).sum(1).mean()


def adaptive_weight(
    reconstruction: torch.Tensor,
    adversarial: torch.Tensor,
    last_layer: nn.Parameter,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """||d reconstruction / d w|| / (||d adversarial / d w|| + 1e-4) at the decoder's last
    weight w, in fp32, clamped to [0, MAX_ADAPTIVE_WEIGHT] and detached, so the adversarial
    gradient reaching the decoder is as strong as the reconstruction's. ``scale``: as in
    :func:`r1_penalty`; without it an fp16 gradient can underflow to zero and send the weight
    to its clamp. An overflowing scale gives 0."""
    scale = torch.ones((), device=reconstruction.device) if scale is None else scale
    (reconstruction_grad,) = torch.autograd.grad(
        reconstruction * scale, last_layer, retain_graph=True
    )
    (adversarial_grad,) = torch.autograd.grad(adversarial * scale, last_layer, retain_graph=True)
    unscaled = [grad.float().norm() / scale for grad in (reconstruction_grad, adversarial_grad)]
    ratio = unscaled[0] / (unscaled[1] + 1e-4)
    # A scale that overflows fp16 makes the ratio inf or NaN; the scaler skips that step, and
    # a weight of 0 keeps its loss finite.
    ratio = torch.where(torch.isfinite(ratio), ratio, 0.0)
    return ratio.clamp(0, MAX_ADAPTIVE_WEIGHT).detach()


def last_weight(decoder: nn.Module, name: str) -> nn.Parameter:
    """The decoder's last registered weight (ndim >= 2), where the adaptive weight looks."""
    found = [p for p in decoder.parameters() if p.ndim >= 2 and p.requires_grad]
    if not found:
        raise LaserError(
            f"discriminator.adaptive_weight needs a decoder with weights, and decoder '{name}' "
            "has none; set discriminator.adaptive_weight: false"
        )
    return found[-1]


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """No gradients for ``module``'s parameters inside, so the generator's backward pass
    through the discriminator leaves the discriminator's gradients alone."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    for parameter in trainable:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in trainable:
            parameter.requires_grad_(True)


class Adversary:
    """The discriminator, its optimizer, and the adversarial halves of a training step.

    Both halves run inside the loop's ``accelerator.accumulate``; before
    ``config.start_step`` the adversarial weight is 0 and the discriminator does not train.
    """

    def __init__(
        self,
        config: DiscriminatorConfig,
        discriminator: Any,
        optimizer: Any,
        accelerator: Accelerator,
        last_layer: nn.Parameter | None,
        grad_clip: float | None,
    ):
        self.config, self.accelerator = config, accelerator
        self.discriminator, self.optimizer = discriminator, optimizer
        # The generator's pass skips the DDP wrapper: its backward must not sync D's grads.
        self.module = accelerator.unwrap_model(discriminator)
        self.last_layer, self.grad_clip = last_layer, grad_clip
        self.discriminator_loss, self.generator_loss = GAN_LOSSES[config.loss]

    def gradient_scale(self, device: torch.device) -> torch.Tensor | None:
        """The fp16 gradient scaler's current scale as a tensor (read without a host sync),
        or None when there is no scaler (fp32, bf16)."""
        scaler = self.accelerator.scaler
        return None if scaler is None else scaler.scale(torch.ones((), device=device))

    def active(self, step: int) -> bool:
        """Whether optimizer step ``step`` (0-based) trains adversarially."""
        return step >= self.config.start_step

    def generator_term(
        self, reconstructions: torch.Tensor, reconstruction_loss: torch.Tensor, step: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(weighted adversarial loss, its weight), both fp32 scalars; the weight is
        ``config.weight`` times the adaptive weight, 0 before ``start_step``."""
        if not self.active(step):
            zero = torch.zeros((), device=reconstructions.device)
            return zero, zero
        with frozen(self.module):
            loss = self.generator_loss(self.module(reconstructions).float())
        weight = torch.full((), self.config.weight, device=loss.device)  # a fill, no copy
        if self.last_layer is not None:
            weight = weight * adaptive_weight(
                reconstruction_loss, loss, self.last_layer, self.gradient_scale(loss.device)
            )
        return weight * loss, weight

    def discriminator_step(
        self, images: torch.Tensor, reconstructions: torch.Tensor, step: int
    ) -> dict[str, torch.Tensor]:
        """Train the discriminator on real ``images`` against detached ``reconstructions``
        (B, C, H, W); returns {"disc": its loss[, "r1": the weighted penalty]}."""
        r1 = self.config.r1_weight > 0
        if not self.active(step):
            zero = torch.zeros((), device=images.device)
            return {"disc": zero, "r1": zero} if r1 else {"disc": zero}
        real = images.detach().requires_grad_(r1)
        real_logits = self.discriminator(real).float()
        fake_logits = self.discriminator(reconstructions.detach()).float()
        loss = self.discriminator_loss(real_logits, fake_logits)
        logs = {"disc": loss}
        if r1:
            penalty = r1_penalty(real_logits, real, self.gradient_scale(real.device))
            logs["r1"] = self.config.r1_weight / 2 * penalty
            loss = loss + logs["r1"]
        self.accelerator.backward(loss)
        if self.accelerator.sync_gradients and self.grad_clip:
            self.accelerator.clip_grad_norm_(self.discriminator.parameters(), self.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return logs


def prepare_adversary(
    recipe: Recipe, discriminator: nn.Module, accelerator: Accelerator, decoder: nn.Module
) -> Adversary:
    """Give the discriminator its own AdamW (train.betas and weight_decay, constant lr) and
    prepare both with Accelerate, so that checkpoints save and restore them."""
    assert recipe.discriminator is not None
    config: DiscriminatorConfig = recipe.discriminator.config  # type: ignore[assignment]
    optimizer = torch.optim.AdamW(
        discriminator.parameters(),
        lr=recipe.train.lr if config.lr is None else config.lr,
        betas=recipe.train.betas,
        weight_decay=recipe.train.weight_decay,
    )
    discriminator, optimizer = accelerator.prepare(discriminator, optimizer)
    last = last_weight(decoder, recipe.decoder.name) if config.adaptive_weight else None
    return Adversary(config, discriminator, optimizer, accelerator, last, recipe.train.grad_clip)
