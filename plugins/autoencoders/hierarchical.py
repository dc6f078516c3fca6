"""``hierarchical`` encoder and decoder: a two-level autoencoder in the style of VQ-VAE-2
(Razavi et al., 2019), bottom latents at H/d and top latents at H/2d, through one bottleneck.

How the two levels share one bottleneck: the top latent (top_dim, h/2, w/2) is rearranged
depth-to-space into (top_dim/4, h, w), a lossless reshuffle, and concatenated with the bottom
latent (bottom_dim, h, w). The bottleneck therefore quantizes, at each bottom position, the
bottom vector together with a quarter of the top vector above it: no value is repeated, and
every built-in bottleneck (which codes positions independently) applies unchanged. The decoder
rebuilds the top grid space-to-depth, decodes it at H/2d, upsamples and concatenates it with
the latents, as VQ-VAE-2's decoder does.

Restrictions, against VQ-VAE-2 proper: the levels share one codebook (or dictionary) and are
coded jointly per position rather than with a code map each, and the bottom encoder does not
see the quantized top (one bottleneck call sits between encoder and decoder). Image sides must
be multiples of 2d (``input_multiple``), so that the top grid tiles the bottom one.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from laser_core import (
    BuildContext,
    LaserError,
    PositiveInt,
    Register,
    ResBlock,
    group_norm,
    hookimpl,
    is_power_of_two,
)

from .conv import (
    ConvDecoder,
    ConvEncoder,
    ConvEncoderConfig,
    DecoderStackConfig,
    EncoderStackConfig,
)


class HierarchicalEncoderConfig(EncoderStackConfig):
    """The stack's downsamplings place the bottom latents at H / 2**downsamplings."""

    bottom_dim: PositiveInt = Field(32, description="channels of the bottom latent")
    top_dim: PositiveInt = Field(
        64, ge=4, multiple_of=4, description="channels of the top latent (one level coarser)"
    )


class HierarchicalEncoder(nn.Module):
    """VQ-VAE-2 style: bottom and depth-to-space top latents, concatenated.

    Images (B, C, H, W) -> latents (B, bottom_dim + top_dim / 4, H / d, W / d): the bottom
    latent and the depth-to-space top latent, concatenated."""

    def __init__(self, config: HierarchicalEncoderConfig, context: BuildContext):
        super().__init__()
        width = config.channels[-1]
        features = ConvEncoderConfig(
            channels=config.channels,
            downsamplings=config.downsamplings,
            blocks=config.blocks,
            latent_dim=width,
        )
        self.features = ConvEncoder(features, context)
        self.bottom = nn.Conv2d(width, config.bottom_dim, 3, padding=1)
        self.top = nn.Sequential(
            nn.Conv2d(width, width, 4, stride=2, padding=1),
            *(ResBlock(width, width) for _ in range(config.blocks)),
            group_norm(width),
            nn.SiLU(),
            nn.Conv2d(width, config.top_dim, 1),
        )
        self.latent_dim = config.bottom_dim + config.top_dim // 4
        self.downsampling = self.features.downsampling
        self.input_multiple = 2 * self.downsampling

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        if height % self.input_multiple or width % self.input_multiple:
            raise LaserError(
                f"encoder 'hierarchical' needs image sides that are multiples of "
                f"{self.input_multiple}, got {height}x{width}; crop or pad the images"
            )
        features = self.features(images)
        top = F.pixel_shuffle(self.top(features), 2)
        return torch.cat([self.bottom(features), top], dim=1)


class HierarchicalDecoderConfig(DecoderStackConfig):
    """The stack decodes the latents and the top path's features together."""


class HierarchicalDecoder(nn.Module):
    """VQ-VAE-2 style: decodes a top path at half resolution, then the bottom.

    Latents (B, D, h, w), h and w even -> images (B, C, h * d, w * d). A top path decodes
    the latents space-to-depth at (h/2, w/2) and upsamples them; the bottom path decodes the
    latents and the top path's features together."""

    def __init__(self, config: HierarchicalDecoderConfig, context: BuildContext):
        super().__init__()
        if not is_power_of_two(context.downsampling):
            raise LaserError(
                f"decoder 'hierarchical' cannot mirror an encoder downsampling by "
                f"{context.downsampling}; use encoder 'hierarchical' or 'conv'"
            )
        width = config.channels[0]
        self.top = nn.Sequential(
            nn.Conv2d(4 * context.latent_dim, width, 3, padding=1),
            *(ResBlock(width, width) for _ in range(config.blocks)),
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(width, width, 3, padding=1),
        )
        self.bottom = ConvDecoder(
            config,
            context.latent_dim + width,
            context.image_channels,
            context.downsampling.bit_length() - 1,
        )

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        top = self.top(F.pixel_unshuffle(latents, 2))
        return self.bottom(torch.cat([latents, top], dim=1))


@hookimpl
def laser_register_encoders(register: Register) -> None:
    register("hierarchical", HierarchicalEncoder, config=HierarchicalEncoderConfig)


@hookimpl
def laser_register_decoders(register: Register) -> None:
    register("hierarchical", HierarchicalDecoder, config=HierarchicalDecoderConfig)
