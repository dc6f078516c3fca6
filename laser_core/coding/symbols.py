"""Codes as the integer symbols an entropy coder sees, and back.

Codes that carry both indices and values are sparse codes (OMP, K-SVD): a slot whose value is 0
adds nothing to the latent whatever its index, so once its value quantizes to 0 its index is
set to 0 and never coded. This canonical form is what compress and decompress both decode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from laser_core.coding.quantize import ValueQuantizer
from laser_core.plugin.contracts import Codes


@dataclass
class Symbols:
    """A code as symbols, each long (positions, depth), positions in row-major order of the
    latent grid: indices (atom or code ids) and values (quantized values), either may be None."""

    indices: torch.Tensor | None
    values: torch.Tensor | None
    zero_value: int = 0
    """The value symbol of 0 (ValueQuantizer.zero_symbol); unused without values."""

    @property
    def depth(self) -> int:
        present = self.indices if self.indices is not None else self.values
        return present.shape[1]

    def coded_indices(self, slot: int) -> torch.Tensor:
        """The index symbols of ``slot`` that are coded: all, or for sparse codes those whose
        value is not 0."""
        indices = self.indices[:, slot]
        if self.values is None:
            return indices
        return indices[self.values[:, slot] != self.zero_value]


def to_symbols(codes: Codes, quantizer: ValueQuantizer | None) -> Symbols:
    """Symbols (positions, depth) of codes shaped (..., depth), flattened in row-major order
    and contiguous: decoded symbols are, and the decoder's floating-point results depend on
    the memory layout of its input. ``quantizer`` is needed iff the codes carry values."""
    codes = codes.map(lambda t: t.reshape(-1, t.shape[-1]).contiguous())
    indices = codes.indices
    if codes.values is None:
        return Symbols(indices, None)
    values = quantizer.symbols(codes.values)
    if indices is not None:
        indices = torch.where(values == quantizer.zero_symbol, 0, indices)
    return Symbols(indices, values, quantizer.zero_symbol)


def concatenate(parts: list[Codes]) -> Codes:
    """Codes of several batches as one, along the first axis."""
    return Codes(
        None if parts[0].indices is None else torch.cat([p.indices for p in parts]),
        None if parts[0].values is None else torch.cat([p.values for p in parts]),
    )


def to_codes(symbols: Symbols, quantizer: ValueQuantizer | None, shape: tuple[int, ...]) -> Codes:
    """Codes of ``shape`` (..., depth), e.g. (1, height, width, depth) for one image."""
    return Codes(
        None if symbols.indices is None else symbols.indices.reshape(shape),
        None if symbols.values is None else quantizer.dequantize(symbols.values).reshape(shape),
    )


def quantized(codes: Codes, quantizer: ValueQuantizer) -> Codes:
    """``codes`` (..., depth) as decompression returns them: values on the quantizer's levels
    and, for sparse codes, index 0 where a value quantized to 0."""
    return to_codes(to_symbols(codes, quantizer), quantizer, tuple(codes.values.shape))
