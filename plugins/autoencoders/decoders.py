"""Built-in decoders: ``conv`` (ResNet, mirrors a conv encoder) and ``identity``."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from laser_core import BuildContext, ComponentConfig, LaserError, hookimpl, is_power_of_two

from .conv import ConvDecoder, ConvDecoderConfig


def _conv(config: ConvDecoderConfig, context: BuildContext) -> ConvDecoder:
    """ResNet decoder: GroupNorm, SiLU, nearest upsampling + conv."""
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
    """No decoder: latents are pixel patches."""
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
    register("conv", _conv, config=ConvDecoderConfig)
    register("identity", _identity)
