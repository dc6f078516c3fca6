"""Uniform scalar quantization of code values (sparse coefficients, Gaussian means), so that
they become symbols an entropy coder can code; one step size per depth slot (per OMP rank)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from laser_core.errors import LaserError


@dataclass
class ValueQuantizer:
    """Mid-tread uniform quantizer with ``bits`` per value: value ≈ steps[slot] * q, q an
    integer in [-2**(bits-1), 2**(bits-1) - 1], coded as the symbol q + 2**(bits-1).

    Zero is a level, so an unused sparse slot (value 0) stays exactly 0. steps: (depth,) fp32.
    """

    bits: int
    steps: torch.Tensor

    @property
    def alphabet_size(self) -> int:
        return 2**self.bits

    @property
    def zero_symbol(self) -> int:
        """The symbol of the level 0."""
        return 2 ** (self.bits - 1)

    @classmethod
    def fit(cls, values: torch.Tensor, bits: int) -> ValueQuantizer:
        """Steps for values (N, depth) of training codes: each slot's largest training magnitude
        becomes the largest positive level, so training values never saturate (values of
        other images beyond it do)."""
        if not 2 <= bits <= 16:
            raise LaserError(f"coefficient bits must lie in 2..16, got {bits}")
        top = 2 ** (bits - 1) - 1
        clip = values.abs().amax(0).float()
        steps = torch.where(clip > 0, clip / top, 1.0)  # an always-zero slot: any step will do
        return cls(bits, steps)

    def symbols(self, values: torch.Tensor) -> torch.Tensor:
        """Symbols (..., depth) long in [0, 2**bits) for values (..., depth)."""
        half = self.zero_symbol
        levels = torch.round(values.float() / self.steps).clamp(-half, half - 1)
        return levels.long() + half

    def dequantize(self, symbols: torch.Tensor) -> torch.Tensor:
        """Values (..., depth) fp32 of symbols (..., depth)."""
        return (symbols - self.zero_symbol).float() * self.steps
