"""Built-in encoders: ``conv`` (ResNet) and ``identity`` (pixels or pixel patches as latents)."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from laser_core import BuildContext, ComponentConfig, PositiveInt, Register, hookimpl

from .conv import ConvEncoder, ConvEncoderConfig


class IdentityEncoderConfig(ComponentConfig):
    patch_size: PositiveInt = Field(1, description="p x p pixel patches become one latent vector")


class IdentityEncoder(nn.Module):
    """No encoder: pixel patches go straight to the bottleneck.

    Images (B, C, H, W) -> (B, C*p*p, H/p, W/p): the bottleneck sees raw pixel patches."""

    def __init__(self, config: IdentityEncoderConfig, context: BuildContext):
        super().__init__()
        self.patch_size = config.patch_size
        self.latent_dim = context.image_channels * config.patch_size**2
        self.downsampling = config.patch_size

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(images, self.patch_size)


@hookimpl
def laser_register_encoders(register: Register) -> None:
    register("conv", ConvEncoder, config=ConvEncoderConfig)
    register("identity", IdentityEncoder, config=IdentityEncoderConfig)
