"""``fsq``: finite scalar quantization (Mentzer et al., 2023, "Finite Scalar Quantization:
VQ-VAE Made Simple"). Each of ``len(levels)`` dimensions is squashed by tanh into a range
holding ``levels[i]`` integers and rounded to the nearest, with a straight-through gradient;
the codebook is the implicit grid of their product, so nothing is learnt but the optional
projections in and out (1x1, present when latent_dim != len(levels)) and nothing can go unused
for want of updates.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from laser_core import (
    Bottleneck,
    BottleneckOutput,
    BuildContext,
    Codes,
    CodeSpec,
    ComponentConfig,
    Register,
    code_counts,
    full_precision,
    hookimpl,
    to_latent,
    to_vectors,
    usage_stats,
)

MAX_CODES = 2**16
"""Largest alphabet of a combined index: the range coder of `laser compress` and the
codebook-usage metric hold one count per symbol (per example, for the metric)."""
EPSILON = 1e-3
"""Shrinks tanh's range a little (the paper's 1 - ε), so the outer levels are reached but never
rounded past."""


class FSQConfig(ComponentConfig):
    levels: list[int] = Field(
        [8, 5, 5, 5],
        min_length=1,
        description="integers each quantized dimension can take; the code has one dimension "
        "per entry (the paper's 2^8: [8, 6, 5], 2^10: [8, 5, 5, 5], 2^16: [8, 8, 8, 5, 5, 5])",
    )
    codes: Literal["index", "per-dimension"] = Field(
        "index",
        description="index: one symbol per position, the grid point's number among "
        "product(levels); per-dimension: one symbol per dimension, alphabets = levels",
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

    @model_validator(mode="after")
    def _index_fits_an_alphabet(self) -> FSQConfig:
        codes = math.prod(self.levels)
        if self.codes == "index" and codes > MAX_CODES:
            raise ValueError(
                f"codes: index numbers the {codes:,} grid points of levels {self.levels} with "
                f"one symbol, but an alphabet holds at most {MAX_CODES:,} (2^16: the entropy "
                "coder and the codebook-usage metric count every symbol); use fewer or smaller "
                "levels, or codes: per-dimension"
            )
        return self


class FiniteScalarQuantizer(Bottleneck):
    """Finite scalar quantization: tanh-bounded dimensions rounded to a fixed grid.

    Latents (batch, dim, height, width) -> a point of the grid levels[0] x levels[1] x ...;
    codes (batch, height, width, 1) or (batch, height, width, len(levels)). Quantized values
    lie in [-1, 1] per dimension before the projection out."""

    levels: torch.Tensor
    basis: torch.Tensor

    def __init__(self, config: FSQConfig, context: BuildContext):
        super().__init__()
        dim = context.latent_dim
        self.dim, self.per_dimension = dim, config.codes == "per-dimension"
        self.level_sizes, self.alphabet = config.levels, math.prod(config.levels)
        width = len(config.levels)
        projected = dim != width
        self.project_in = nn.Linear(dim, width) if projected else nn.Identity()
        self.project_out = nn.Linear(width, dim) if projected else nn.Identity()
        levels = torch.tensor(config.levels)
        self.register_buffer("levels", levels, persistent=False)
        # Mixed radix, first dimension least significant, as the paper numbers the grid.
        basis = torch.cumprod(torch.tensor([1, *config.levels[:-1]]), 0)
        self.register_buffer("basis", basis, persistent=False)
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

    def quantize(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Vectors (N, len(levels)) in fp32 -> grid points scaled to [-1, 1] with the
        straight-through gradient, and their integer levels (N, len(levels)) from 0."""
        bounded = self.bound(x)
        rounded = bounded.round()
        # Adding bounded - sg(bounded), exactly zero, keeps rounded's values and bounded's
        # gradient: straight-through rounding.
        quantized = (rounded + (bounded - bounded.detach())) / self.half_width
        return quantized, (rounded + self.half_width).long()

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        with full_precision(z):
            quantized, digits = self.quantize(self.project_in(to_vectors(z)))
            quantized = to_latent(self.project_out(quantized), z.shape).to(z.dtype)
        codes = self._codes(digits, z.shape)
        return BottleneckOutput(
            quantized=quantized,
            loss=quantized.new_zeros((), dtype=torch.float32),
            codes=codes,
            stats=self._stats(codes.indices),
        )

    def _codes(self, digits: torch.Tensor, shape: torch.Size) -> Codes:
        batch, _, height, width = shape
        if not self.per_dimension:
            digits = (digits * self.basis).sum(1, keepdim=True)
        return Codes(digits.view(batch, height, width, -1))

    def _stats(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """Usage of the combined index, or averaged over dimensions, as the codes are laid
        out (the codebook-usage metric averages over slots the same way)."""
        if not self.per_dimension:
            return usage_stats(code_counts(indices, self.alphabet))
        slots = [
            usage_stats(code_counts(indices[..., i], size))
            for i, size in enumerate(self.level_sizes)
        ]
        return {key: torch.stack([s[key] for s in slots]).mean() for key in slots[0]}

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> Codes:
        with full_precision(z):
            _, digits = self.quantize(self.project_in(to_vectors(z)))
        return self._codes(digits, z.shape)

    def decode(self, codes: Codes) -> torch.Tensor:
        indices = codes.indices
        if not self.per_dimension:
            indices = indices // self.basis % self.levels  # (..., 1) -> (..., len(levels))
        values = (indices.float() - self.half_width) / self.half_width
        with full_precision(values):
            return self.project_out(values).permute(0, 3, 1, 2)

    def code_spec(self) -> CodeSpec:
        if self.per_dimension:
            return CodeSpec(alphabet_sizes=list(self.level_sizes))
        return CodeSpec(alphabet_sizes=[self.alphabet])


@hookimpl
def laser_register_bottlenecks(register: Register) -> None:
    register("fsq", FiniteScalarQuantizer, config=FSQConfig)
