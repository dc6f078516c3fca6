"""Built-in decoders: ``conv`` (ResNet, mirrors a conv encoder) and ``identity``."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from laser_core import hookimpl
from laser_core.errors import LaserError
from laser_core.nn.layers import ResBlock, group_norm, is_power_of_two, stage_channels
from laser_core.plugin.contracts import BuildContext, ComponentConfig


class ConvDecoderConfig(ComponentConfig):
    channels: list[int] = Field([128, 64], min_length=1, description="width per resolution")
    upsamplings: int | None = Field(
        None, ge=0, description="each doubles height and width; null mirrors the encoder"
    )
    blocks: int = Field(1, ge=1, description="residual blocks per resolution")


class ConvDecoder(nn.Module):
    """Latents (B, latent_dim, h, w) -> images (B, C, h * 2**upsamplings, ...)."""

    def __init__(self, config: ConvDecoderConfig, latent_dim: int, image_channels: int, ups: int):
        super().__init__()
        widths = stage_channels(config.channels, ups + 1)
        layers: list[nn.Module] = [nn.Conv2d(latent_dim, widths[0], 3, padding=1)]
        for stage, width in enumerate(widths):
            layers += [ResBlock(width, width) for _ in range(config.blocks)]
            if stage < ups:
                layers += [
                    nn.Upsample(scale_factor=2, mode="nearest"),
                    nn.Conv2d(width, widths[stage + 1], 3, padding=1),
                ]
        layers += [
            group_norm(widths[-1]),
            nn.SiLU(),
            nn.Conv2d(widths[-1], image_channels, 3, padding=1),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.net(latents)


def _conv(config: ConvDecoderConfig, context: BuildContext) -> ConvDecoder:
    ups = config.upsamplings
    if ups is None:
        if not is_power_of_two(context.downsampling):
            raise LaserError(
                f"decoder 'conv' cannot mirror an encoder downsampling by {context.downsampling}; "
                "set decoder.upsamplings"
            )
        ups = context.downsampling.bit_length() - 1
    return ConvDecoder(config, context.latent_dim, context.image_channels, ups)


class IdentityDecoder(nn.Module):
    """Inverse of the identity encoder: (B, C*p*p, H/p, W/p) -> (B, C, H, W)."""

    def __init__(self, patch_size: int):
        super().__init__()
        self.patch_size = patch_size

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(latents, self.patch_size)


def _identity(config: ComponentConfig, context: BuildContext) -> IdentityDecoder:
    patch = context.downsampling
    if context.latent_dim != context.image_channels * patch**2:
        raise LaserError(
            f"decoder 'identity' needs latents of {context.image_channels}*{patch}^2 channels "
            f"(pixel patches), but the encoder gives {context.latent_dim}; use encoder "
            "'identity' or decoder 'conv'"
        )
    return IdentityDecoder(patch)


@hookimpl
def laser_register_decoders(register) -> None:
    register(
        "conv",
        _conv,
        config=ConvDecoderConfig,
        summary="ResNet decoder: GroupNorm, SiLU, nearest upsampling + conv",
    )
    register("identity", _identity, summary="no decoder: latents are pixel patches")
