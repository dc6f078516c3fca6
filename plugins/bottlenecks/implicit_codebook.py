"""What ``fsq`` and ``lfq`` share: a codebook that is a grid nothing stores.

Latents are projected (1x1, when latent_dim differs) onto one dimension per entry of
``levels`` and each dimension is quantized to one of its levels: fsq's ``levels``, lfq's two
signs. A grid point is its digits, one integer per dimension from 0, or their mixed-radix
number with the first dimension least significant (Σ digit_i Π_{j<i} levels_j), as the FSQ
paper numbers the grid; the recipe's ``codes`` picks which form the codes carry.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from laser_core import (
    Bottleneck,
    BottleneckOutput,
    Codes,
    CodeSpec,
    ComponentConfig,
    code_counts,
    full_precision,
    to_latent,
    to_vectors,
    usage_stats,
)

MAX_CODES = 2**16
"""Largest grid whose points one symbol numbers: the range coder of `laser compress` and the
codebook-usage metric hold one count per symbol (per example, for the metric)."""


class ImplicitCodebookConfig(ComponentConfig):
    """Keys of every grid quantizer (``fsq``, ``lfq``); subclasses say what the grid is."""

    codes: Literal["index", "per-dimension"] = Field(
        "index",
        description="index: one symbol per position, the grid point's number; per-dimension: "
        "one symbol per dimension, each dimension's levels its alphabet",
    )

    @property
    def levels_per_dimension(self) -> list[int]:
        """How many levels each quantized dimension has."""
        raise NotImplementedError

    @model_validator(mode="after")
    def _index_fits_an_alphabet(self) -> ImplicitCodebookConfig:
        levels = self.levels_per_dimension
        points = math.prod(levels)
        if self.codes == "index" and points > MAX_CODES:
            raise ValueError(
                f"codes: index numbers the {points:,} grid points of {len(levels)} dimensions "
                f"with one symbol, but an alphabet holds at most {MAX_CODES:,} (2^16: the "
                "entropy coder and the codebook-usage metric count every symbol); quantize "
                "fewer or coarser dimensions, or use codes: per-dimension"
            )
        return self


class ImplicitCodebook(Bottleneck):
    """Latents (batch, dim, height, width) -> a point of the grid levels[0] x levels[1] x ...;
    codes (batch, height, width, 1), its number, or (batch, height, width, len(levels)), its
    digits. Subclasses quantize projected vectors with the gradient they choose (``quantize``)
    and turn vectors into digits (``digits``) and digits into the grid's values (``values``)."""

    radix: torch.Tensor
    place_values: torch.Tensor

    def __init__(self, dim: int, levels: list[int], config: ImplicitCodebookConfig):
        super().__init__()
        self.dim, self.levels_per_dimension = dim, levels
        self.per_dimension = config.codes == "per-dimension"
        projected = dim != len(levels)
        self.project_in = nn.Linear(dim, len(levels)) if projected else nn.Identity()
        self.project_out = nn.Linear(len(levels), dim) if projected else nn.Identity()
        self.register_buffer("radix", torch.tensor(levels), persistent=False)
        place_values = torch.cumprod(torch.tensor([1, *levels[:-1]]), 0)
        self.register_buffer("place_values", place_values, persistent=False)

    def quantize(
        self, vectors: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Projected fp32 vectors (N, len(levels)) -> the grid values (N, len(levels)) with a
        gradient for the vectors, their digits, the loss and stats beyond usage."""
        raise NotImplementedError

    def digits(self, vectors: torch.Tensor) -> torch.Tensor:
        """Projected fp32 vectors (N, len(levels)) -> long digits (N, len(levels))."""
        raise NotImplementedError

    def values(self, digits: torch.Tensor) -> torch.Tensor:
        """Long digits (..., len(levels)) -> the grid point's fp32 values (..., len(levels))."""
        raise NotImplementedError

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        with full_precision(z):
            values, digits, loss, stats = self.quantize(self.project_in(to_vectors(z)))
            quantized = to_latent(self.project_out(values), z.shape).to(z.dtype)
        codes = self.pack(digits, z.shape)
        return BottleneckOutput(quantized, loss, codes, {**stats, **self.usage(codes.indices)})

    def pack(self, digits: torch.Tensor, shape: torch.Size) -> Codes:
        """Digits (N, len(levels)) of latents of ``shape`` -> codes laid out as configured."""
        batch, _, height, width = shape
        if not self.per_dimension:
            digits = (digits * self.place_values).sum(1, keepdim=True)
        return Codes(digits.view(batch, height, width, -1))

    def unpack(self, codes: Codes) -> torch.Tensor:
        """Codes -> digits (batch, height, width, len(levels))."""
        if self.per_dimension:
            return codes.indices
        return self.number_to_digits(codes.indices)

    def number_to_digits(self, numbers: torch.Tensor) -> torch.Tensor:
        """Grid point numbers (..., 1) -> their digits (..., len(levels))."""
        return numbers // self.place_values % self.radix

    def usage(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """Usage of the numbers, or averaged over dimensions, as the codes are laid out (the
        codebook-usage metric averages over depth slots the same way)."""
        if not self.per_dimension:
            return usage_stats(code_counts(indices, math.prod(self.levels_per_dimension)))
        slots = [
            usage_stats(code_counts(indices[..., i], size))
            for i, size in enumerate(self.levels_per_dimension)
        ]
        return {key: torch.stack([s[key] for s in slots]).mean() for key in slots[0]}

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> Codes:
        with full_precision(z):
            digits = self.digits(self.project_in(to_vectors(z)))
        return self.pack(digits, z.shape)

    def decode(self, codes: Codes) -> torch.Tensor:
        values = self.values(self.unpack(codes))
        with full_precision(values):
            return self.project_out(values).permute(0, 3, 1, 2)

    def code_spec(self) -> CodeSpec:
        if self.per_dimension:
            return CodeSpec(alphabet_sizes=list(self.levels_per_dimension))
        return CodeSpec(alphabet_sizes=[math.prod(self.levels_per_dimension)])
