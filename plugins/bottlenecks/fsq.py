"""``fsq``: finite scalar quantization (Mentzer et al., 2023, "Finite Scalar Quantization:
VQ-VAE Made Simple"). Each of ``len(levels)`` dimensions is squashed by tanh into a range
holding ``levels[i]`` integers and rounded to the nearest, with a straight-through gradient;
the codebook is the implicit grid of their product, so nothing is learnt but the optional
projections in and out (1x1, present when latent_dim != len(levels)) and nothing can go unused
for want of updates.
"""

from __future__ import annotations

import torch
from pydantic import Field, field_validator

from laser_core import BuildContext, Register, hookimpl, straight_through

from .implicit_codebook import ImplicitCodebook, ImplicitCodebookConfig

EPSILON = 1e-3
"""Shrinks tanh's range a little (the paper's 1 - ε), so the outer levels are reached but never
rounded past."""


class FSQConfig(ImplicitCodebookConfig):
    levels: list[int] = Field(
        [8, 5, 5, 5],
        min_length=1,
        description="integers each quantized dimension can take; the code has one dimension "
        "per entry (the paper's 2^8: [8, 6, 5], 2^10: [8, 5, 5, 5], 2^16: [8, 8, 8, 5, 5, 5])",
    )

    @field_validator("levels")
    @classmethod
    def _three_or_more(cls, levels: list[int]) -> list[int]:
        if min(levels) < 3:
            raise ValueError(
                "every level must be 3 or more: an even number L of levels shifts tanh's input "
                "by atanh(0.5 / ((L - 1) / 2)), which does not exist for L = 2; for one bit "
                "per dimension use the lfq bottleneck"
            )
        return levels

    @property
    def levels_per_dimension(self) -> list[int]:
        return self.levels


class FiniteScalarQuantizer(ImplicitCodebook):
    """Finite scalar quantization: tanh-bounded dimensions rounded to a fixed grid.

    Latents (batch, dim, height, width) -> a point of the grid levels[0] x levels[1] x ...;
    codes (batch, height, width, 1) or (batch, height, width, len(levels)). Quantized values
    lie in [-1, 1] per dimension before the projection out."""

    def __init__(self, config: FSQConfig, context: BuildContext):
        super().__init__(context.latent_dim, config.levels, config)
        levels = self.radix
        half = (levels - 1) * (1 - EPSILON) / 2
        offset = (1 - levels % 2) * 0.5  # even levels: the integers sit half a step off centre
        self.register_buffer("half_range", half, persistent=False)
        self.register_buffer("offset", offset, persistent=False)
        self.register_buffer("shift", torch.atanh(offset / half), persistent=False)
        self.register_buffer("half_width", (levels // 2).float(), persistent=False)

    def bound(self, x: torch.Tensor) -> torch.Tensor:
        """Vectors (N, len(levels)) -> values that round to the integers -(L // 2) ..
        (L - 1) // 2 of each dimension's L levels; 0 maps to 0."""
        return torch.tanh(x + self.shift) * self.half_range - self.offset

    def digits(self, vectors: torch.Tensor) -> torch.Tensor:
        return (self.bound(vectors).round() + self.half_width).long()

    def values(self, digits: torch.Tensor) -> torch.Tensor:
        """Digits -> grid points scaled to [-1, 1]."""
        return (digits.float() - self.half_width) / self.half_width

    def quantize(
        self, vectors: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Rounding with the gradient of the bounded values; no loss."""
        bounded = self.bound(vectors)
        rounded = bounded.round()
        quantized = straight_through(rounded, bounded) / self.half_width
        return quantized, (rounded + self.half_width).long(), vectors.new_zeros(()), {}


@hookimpl
def laser_register_bottlenecks(register: Register) -> None:
    register("fsq", FiniteScalarQuantizer, config=FSQConfig)
