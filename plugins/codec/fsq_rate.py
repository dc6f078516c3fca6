"""``fsq-rate``: finite scalar quantization (Mentzer et al., 2023) trained for rate. Each latent
channel is bounded by tanh to ``levels`` integers, -(levels // 2) to levels // 2, and rounded
(uniform noise in training, as the factorized prior), and its levels are coded under a learnt
per-channel density (Ballé et al.'s non-parametric one, as ``factorized``), whose -log2
likelihood is the rate. Unlike ``fsq``, the levels are not equally likely: the rate term
teaches the encoder to use the outer ones only where they pay for their bits.

``laser compress`` codes one stage, the levels (dim, height, width), one table row per channel
over the levels only."""

from __future__ import annotations

import torch
from pydantic import Field, field_validator

from laser_core import (
    BottleneckOutput,
    BuildContext,
    Codes,
    CodeSpec,
    ComponentConfig,
    Register,
    full_precision,
    hookimpl,
)
from laser_core.ops import CodingTable

from .densities import factorized_table
from .factorized_prior import FactorizedBottleneck, FactorizedConfig


class FSQRateConfig(ComponentConfig):
    levels: int = Field(15, description="integers each channel can take, an odd number >= 3")

    @field_validator("levels")
    @classmethod
    def _odd(cls, levels: int) -> int:
        if levels < 3 or levels % 2 == 0:
            raise ValueError(
                f"levels must be an odd number, 3 or more (got {levels}): the levels are the "
                "integers -(levels // 2) to levels // 2, symmetric around 0"
            )
        return levels


class RateFiniteScalarQuantizer(FactorizedBottleneck):
    """Latents (batch, dim, height, width) -> levels of the same shape, integers in
    [-(levels // 2), levels // 2]; codes (batch, height, width, dim), the levels from 0. The
    factorized prior on bounded latents: its stages, rows and dequantization are the same."""

    refinable = False
    """Its symbols are levels of bounded latents, which the factorized prior's relaxation of
    plain rounding does not model."""

    def __init__(self, config: FSQRateConfig, context: BuildContext):
        super().__init__(FactorizedConfig(), context)
        self.levels, self.reach = config.levels, config.levels // 2

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Latents -> values that round to the levels: tanh stretched to reach ± (reach +
        0.499), so the outer levels are reached and never rounded past."""
        return torch.tanh(z.float()) * (self.reach + 0.499)

    def levels_of(self, z: torch.Tensor) -> torch.Tensor:
        """Latents -> their levels, long, in [-reach, reach]."""
        return torch.round(self.bound(z)).long()

    def level_mass(self) -> torch.Tensor:
        """The density's mass on each channel's levels (dim,), differentiable: what the
        likelihoods are divided by, so that they are a distribution over the levels, as the
        coding table (which puts the tails beyond the outer levels nowhere) makes them."""
        levels = torch.arange(-self.reach, self.reach + 1, dtype=torch.float32)
        grid = levels.to(self.density.quantiles.device).expand(1, self.dim, 1, -1)
        was_training = self.density.training
        self.density.eval()  # the levels themselves, not noisy ones
        _, likelihoods = self.density(grid.contiguous())
        self.density.train(was_training)
        return likelihoods[0, :, 0].sum(-1)

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        with full_precision(z):
            quantized, likelihoods = self.density(self.bound(z))
            normaliser = torch.log2(self.level_mass())[:, None, None]
            bits = (normaliser - torch.log2(likelihoods)).flatten(1).sum(1)
        return BottleneckOutput(
            quantized=quantized.to(z.dtype),
            loss=z.new_zeros((), dtype=torch.float32),
            codes=self.encode(z),
            stats={"bits_per_latent": bits.detach().mean() / z[0].numel()},
            bits=bits,
        )

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> Codes:
        return Codes(indices=(self.levels_of(z) + self.reach).permute(0, 2, 3, 1))

    def decode(self, codes: Codes) -> torch.Tensor:
        return (codes.indices - self.reach).float().permute(0, 3, 1, 2)

    def code_spec(self) -> CodeSpec:
        return CodeSpec(alphabet_sizes=[self.levels] * self.dim)

    def coding_tables(self) -> list[CodingTable]:
        return [factorized_table(self.density, self.reach)]

    @torch.no_grad()
    def stage_symbols(self, z: torch.Tensor) -> list[torch.Tensor]:
        return [self.levels_of(z)]


@hookimpl
def laser_register_bottlenecks(register: Register) -> None:
    register("fsq-rate", RateFiniteScalarQuantizer, config=FSQRateConfig)
