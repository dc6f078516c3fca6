"""The ResNet encoder and decoder stacks behind ``conv`` and the hierarchical autoencoder."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from laser_core import (
    BuildContext,
    ComponentConfig,
    NonNegativeInt,
    PositiveInt,
    ResBlock,
    group_norm,
    stage_channels,
)


class EncoderStackConfig(ComponentConfig):
    """The ResNet encoder stack, as the ``conv`` and ``hierarchical`` encoders configure it."""

    channels: list[PositiveInt] = Field([64, 128], min_length=1, description="width per resolution")
    downsamplings: NonNegativeInt = Field(2, description="each halves height and width")
    blocks: PositiveInt = Field(1, description="residual blocks per resolution")


class ConvEncoderConfig(EncoderStackConfig):
    latent_dim: PositiveInt = Field(64)


class ConvEncoder(nn.Module):
    """ResNet encoder: GroupNorm, SiLU, strided-conv downsampling.

    Images (B, C, H, W) -> latents (B, latent_dim, H / 2**downsamplings, ...)."""

    def __init__(self, config: ConvEncoderConfig, context: BuildContext):
        super().__init__()
        widths = stage_channels(config.channels, config.downsamplings + 1)
        layers: list[nn.Module] = [nn.Conv2d(context.image_channels, widths[0], 3, padding=1)]
        for stage, width in enumerate(widths):
            layers += [ResBlock(width, width) for _ in range(config.blocks)]
            if stage < config.downsamplings:
                layers.append(nn.Conv2d(width, widths[stage + 1], 4, stride=2, padding=1))
        layers += [group_norm(widths[-1]), nn.SiLU(), nn.Conv2d(widths[-1], config.latent_dim, 1)]
        self.net = nn.Sequential(*layers)
        self.latent_dim = config.latent_dim
        self.downsampling = 2**config.downsamplings

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class DecoderStackConfig(ComponentConfig):
    """The ResNet decoder stack, as the ``conv`` and ``hierarchical`` decoders configure it."""

    channels: list[PositiveInt] = Field([128, 64], min_length=1, description="width per resolution")
    blocks: PositiveInt = Field(1, description="residual blocks per resolution")


class ConvDecoderConfig(DecoderStackConfig):
    upsamplings: NonNegativeInt | None = Field(
        None, description="each doubles height and width; null mirrors the encoder"
    )


class ConvDecoder(nn.Module):
    """Latents (B, latent_dim, h, w) -> images (B, C, h * 2**upsamplings, ...)."""

    def __init__(self, config: DecoderStackConfig, latent_dim: int, image_channels: int, ups: int):
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
