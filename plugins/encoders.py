"""Built-in encoders: ``conv`` (ResNet) and ``identity`` (pixels or pixel patches as latents)."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from laser_core import hookimpl
from laser_core.nn.layers import ResBlock, group_norm, stage_channels
from laser_core.plugin.contracts import BuildContext, ComponentConfig


class ConvEncoderConfig(ComponentConfig):
    channels: list[int] = Field([64, 128], min_length=1, description="width per resolution")
    downsamplings: int = Field(2, ge=0, description="each halves height and width")
    blocks: int = Field(1, ge=1, description="residual blocks per resolution")
    latent_dim: int = Field(64, ge=1)


class ConvEncoder(nn.Module):
    """Images (B, C, H, W) -> latents (B, latent_dim, H / 2**downsamplings, ...)."""

    def __init__(self, config: ConvEncoderConfig, image_channels: int):
        super().__init__()
        widths = stage_channels(config.channels, config.downsamplings + 1)
        layers: list[nn.Module] = [nn.Conv2d(image_channels, widths[0], 3, padding=1)]
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


class IdentityEncoderConfig(ComponentConfig):
    patch_size: int = Field(1, ge=1, description="p x p pixel patches become one latent vector")


class IdentityEncoder(nn.Module):
    """Images (B, C, H, W) -> (B, C*p*p, H/p, W/p): the bottleneck sees raw pixel patches."""

    def __init__(self, config: IdentityEncoderConfig, image_channels: int):
        super().__init__()
        self.patch_size = config.patch_size
        self.latent_dim = image_channels * config.patch_size**2
        self.downsampling = config.patch_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(images, self.patch_size)


@hookimpl
def laser_register_encoders(register) -> None:
    register(
        "conv",
        lambda config, context: ConvEncoder(config, context.image_channels),
        config=ConvEncoderConfig,
        summary="ResNet encoder: GroupNorm, SiLU, strided-conv downsampling",
    )
    register(
        "identity",
        _identity,
        config=IdentityEncoderConfig,
        summary="no encoder: pixel patches go straight to the bottleneck",
    )


def _identity(config: IdentityEncoderConfig, context: BuildContext) -> IdentityEncoder:
    return IdentityEncoder(config, context.image_channels)
