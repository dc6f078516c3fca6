"""Built-in encoders: ``conv`` (ResNet) and ``identity`` (pixels or pixel patches as latents)."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from laser_core import BuildContext, ComponentConfig, PositiveInt, hookimpl

from .conv import ConvEncoder, ConvEncoderConfig


class IdentityEncoderConfig(ComponentConfig):
    patch_size: PositiveInt = Field(1, description="p x p pixel patches become one latent vector")


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
