"""``hyperprior``: Ballé et al. (2018)'s scale hyperprior. A hyper-encoder summarises the
latents' magnitudes as side information z (4x smaller, coded under a factorized prior); a
hyper-decoder turns the rounded z into a Gaussian scale for every latent, which is coded under
a zero-mean Gaussian of that scale. Rate: the bits of the latents and of z together."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from laser_core import (
    BottleneckOutput,
    BuildContext,
    ComponentConfig,
    PositiveInt,
    Register,
    full_precision,
    hookimpl,
)
from laser_core.ops import CodingTable

from .densities import (
    EntropyBottleneck,
    GaussianConditional,
    factorized_table,
    gaussian_table,
    image_bits,
    scale_rows,
)
from .rounded import RoundedLatents, rounded_codes, soft_round, straight_through_round

HYPER_DOWNSAMPLING = 4


class HyperpriorConfig(ComponentConfig):
    hyper_channels: PositiveInt = Field(
        128, description="channels of the hyper-encoder, hyper-decoder and side information z"
    )


def hyper_analysis(dim: int, channels: int) -> nn.Sequential:
    """|latents| (batch, dim, h, w) -> side information (batch, channels, h/4, w/4)."""
    return nn.Sequential(
        nn.Conv2d(dim, channels, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(channels, channels, 5, stride=2, padding=2),
        nn.ReLU(inplace=True),
        nn.Conv2d(channels, channels, 5, stride=2, padding=2),
    )


def hyper_synthesis(channels: int, dim: int) -> nn.Sequential:
    """Side information (batch, channels, h/4, w/4) -> scales (batch, dim, h, w), >= 0."""
    return nn.Sequential(
        nn.ConvTranspose2d(channels, channels, 5, stride=2, padding=2, output_padding=1),
        nn.ReLU(inplace=True),
        nn.ConvTranspose2d(channels, channels, 5, stride=2, padding=2, output_padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(channels, dim, 3, padding=1),
        nn.ReLU(inplace=True),
    )


class HyperpriorBottleneck(RoundedLatents):
    """Latents (batch, dim, height, width) -> rounded latents; coded in two stages, the side
    information (batch, hyper_channels, ceil(height / 4), ceil(width / 4)), then the latents.
    The hyper-encoder sees the latents' magnitudes padded with zeros to a multiple of 4, and
    the scales are cropped back, so any latent grid codes."""

    def __init__(self, config: HyperpriorConfig, context: BuildContext):
        super().__init__()
        self.dim, self.hyper_channels = context.latent_dim, config.hyper_channels
        self.hyper_analysis = hyper_analysis(self.dim, self.hyper_channels)
        self.hyper_synthesis = hyper_synthesis(self.hyper_channels, self.dim)
        self.side_density = EntropyBottleneck(self.hyper_channels)
        self.latent_density = GaussianConditional(None)

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        with full_precision(z):
            latents = z.float()
            side = self.side_information(latents)
            _, side_likelihoods = self.side_density(side)
            scales = self.scales(straight_through_round(side), latents.shape[2:])
            _, likelihoods = self.latent_density(latents, scales)
            quantized = straight_through_round(latents)
        bits = image_bits(likelihoods)
        side_bits = image_bits(side_likelihoods)
        return BottleneckOutput(
            quantized=quantized.to(z.dtype),
            loss=z.new_zeros((), dtype=torch.float32),
            codes=rounded_codes(latents),
            stats={"side_bits_share": (side_bits.sum() / (bits + side_bits).sum()).detach()},
            bits=bits + side_bits,
        )

    def relaxed(self, z: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        latents = z.float()
        side = straight_through_round(self.side_information(latents))  # as stage_symbols
        soft = soft_round(latents, temperature)
        scales = self.scales(side, latents.shape[2:])
        bits = image_bits(self.latent_density.likelihoods_at(soft, scales))
        return soft, bits + image_bits(self.side_density.likelihoods_at(side))

    def side_information(self, latents: torch.Tensor) -> torch.Tensor:
        """The hyper-encoder's output (batch, hyper_channels, ceil(h / 4), ceil(w / 4))."""
        height, width = latents.shape[2:]
        padding = (0, -width % HYPER_DOWNSAMPLING, 0, -height % HYPER_DOWNSAMPLING)
        return self.hyper_analysis(F.pad(latents.abs(), padding))

    def scales(self, side: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """Each latent's Gaussian scale (batch, dim, *grid) from the rounded side information."""
        return self.hyper_synthesis(side)[:, :, : grid[0], : grid[1]]

    def coding_tables(self) -> list[CodingTable]:
        return [factorized_table(self.side_density), gaussian_table()]

    @torch.no_grad()
    def stage_symbols(self, z: torch.Tensor) -> list[torch.Tensor]:
        latents = z.float()
        side = torch.round(self.side_information(latents))
        return [side.long(), torch.round(latents).long()]

    def stage_shapes(self, grid: tuple[int, int]) -> list[tuple[int, int, int]]:
        side = (-(-grid[0] // HYPER_DOWNSAMPLING), -(-grid[1] // HYPER_DOWNSAMPLING))
        return [(self.hyper_channels, *side), (self.dim, *grid)]

    @torch.no_grad()
    def stage_rows(
        self, stage: int, decoded: list[torch.Tensor], grid: tuple[int, int]
    ) -> torch.Tensor:
        if stage == 0:
            side = self.stage_shapes(grid)[0]
            return torch.arange(self.hyper_channels)[:, None, None].expand(side)
        return scale_rows(self.scales(decoded[0].float(), grid))[0].cpu()

    def dequantize(self, decoded: list[torch.Tensor]) -> torch.Tensor:
        return decoded[1].float()


@hookimpl
def laser_register_bottlenecks(register: Register) -> None:
    register("hyperprior", HyperpriorBottleneck, config=HyperpriorConfig)
