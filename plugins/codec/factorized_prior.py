"""Ballé et al. (2017)'s factorized prior, the ``factorized`` bottleneck and the base of
``fsq-rate``. Latents are rounded (uniform noise in training) and each channel has its own
learnt non-parametric density, shared by every position; the rate is the codes' -log2
likelihood under it. Codes: the rounded latents."""

from __future__ import annotations

import torch

from laser_core import (
    BottleneckOutput,
    BuildContext,
    ComponentConfig,
    full_precision,
)
from laser_core.ops import CodingTable

from .densities import EntropyBottleneck, factorized_table, image_bits
from .rounded import RoundedLatents, rounded_codes, soft_round, straight_through_round


class FactorizedConfig(ComponentConfig):
    """No options: the density's filters are Ballé et al.'s (3, 3, 3, 3)."""


class FactorizedBottleneck(RoundedLatents):
    """Latents (batch, dim, height, width) -> rounded latents, coded channel by channel."""

    def __init__(self, config: FactorizedConfig, context: BuildContext):
        super().__init__()
        self.dim = context.latent_dim
        self.density = EntropyBottleneck(self.dim)

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        with full_precision(z):
            _, likelihoods = self.density(z.float())
            quantized = straight_through_round(z.float())
        bits = image_bits(likelihoods)
        return BottleneckOutput(
            quantized=quantized.to(z.dtype),
            loss=z.new_zeros((), dtype=torch.float32),
            codes=rounded_codes(z),
            stats={"bits_per_latent": bits.detach().mean() / z[0].numel()},
            bits=bits,
        )

    def relaxed(self, z: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        soft = soft_round(z.float(), temperature)
        return soft, image_bits(self.density.likelihoods_at(soft))

    def coding_tables(self) -> list[CodingTable]:
        return [factorized_table(self.density)]

    def stage_symbols(self, z: torch.Tensor) -> list[torch.Tensor]:
        return [torch.round(z.float()).long()]

    def stage_shapes(self, grid: tuple[int, int]) -> list[tuple[int, int, int]]:
        return [(self.dim, *grid)]

    def stage_rows(
        self, stage: int, decoded: list[torch.Tensor], grid: tuple[int, int]
    ) -> torch.Tensor:
        return torch.arange(self.dim)[:, None, None].expand(self.dim, *grid)

    def dequantize(self, decoded: list[torch.Tensor]) -> torch.Tensor:
        return decoded[0].float()
