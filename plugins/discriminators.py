"""Built-in discriminators: ``patchgan``, the N-layer PatchGAN of pix2pix that VQGAN uses."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from laser_core import (
    BuildContext,
    Discriminator,
    DiscriminatorConfig,
    LaserError,
    PositiveInt,
    Register,
    group_norm,
    hookimpl,
)

Norm = Literal["batch", "group", "instance", "none"]
MAX_WIDTH_MULTIPLIER = 8  # pix2pix's cap: widths double per layer up to 8x the first


class PatchGANConfig(DiscriminatorConfig):
    layers: PositiveInt = Field(3, description="stride-2 convolutions; 3 sees 70x70 patches")
    channels: PositiveInt = Field(64, description="width of the first layer, doubled per layer")
    norm: Norm = Field("batch", description="normalisation after every inner convolution")


def _norm(kind: Norm, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return group_norm(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


class PatchGAN(Discriminator):
    """N-layer PatchGAN (pix2pix, VQGAN): a real/fake logit per image patch.

    Images (B, C, H, W) -> logits (B, 1, H / 2**layers - 2, W / 2**layers - 2), one per
    overlapping patch: ``layers`` 4x4 stride-2 convolutions, one 4x4 stride-1 convolution,
    then a 4x4 convolution to one channel, with LeakyReLU(0.2) between them."""

    def __init__(self, config: PatchGANConfig, context: BuildContext):
        super().__init__()
        _check_size(config, context.image_size)
        bias = config.norm == "none"  # a norm's own shift makes a conv bias redundant
        multipliers = [min(2**i, MAX_WIDTH_MULTIPLIER) for i in range(config.layers + 1)]
        widths = [config.channels * m for m in multipliers]
        layers: list[nn.Module] = [
            nn.Conv2d(context.image_channels, widths[0], 4, stride=2, padding=1),
            nn.LeakyReLU(0.2),
        ]
        for i in range(1, config.layers + 1):
            stride = 2 if i < config.layers else 1
            layers += [
                nn.Conv2d(widths[i - 1], widths[i], 4, stride=stride, padding=1, bias=bias),
                _norm(config.norm, widths[i]),
                nn.LeakyReLU(0.2),
            ]
        layers.append(nn.Conv2d(widths[-1], 1, 4, stride=1, padding=1))
        self.net = nn.Sequential(*layers)
        self.apply(_dcgan_init)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


def _dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation, as pix2pix and VQGAN use: N(0, 0.02) convolutions, N(1, 0.02)
    norm scales."""
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d | nn.GroupNorm | nn.InstanceNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def logits_side(image_size: int, layers: int) -> int:
    """Side of the logit map: each stride-2 4x4 conv (padding 1) halves, rounding down;
    each of the two stride-1 4x4 convs takes one pixel off."""
    for _ in range(layers):
        image_size //= 2
    return image_size - 2


def _check_size(config: PatchGANConfig, image_size: int) -> None:
    if logits_side(image_size, config.layers) < 1:
        layers = range(1, config.layers)
        fits = max((n for n in layers if logits_side(image_size, n) >= 1), default=0)
        raise LaserError(
            f"discriminator 'patchgan' with {config.layers} layers needs images of at least "
            f"{3 * 2**config.layers} pixels, got {image_size}; "
            + (f"set discriminator.layers: {fits}" if fits else "use larger images")
        )


@hookimpl
def laser_register_discriminators(register: Register) -> None:
    register("patchgan", PatchGAN, config=PatchGANConfig)
