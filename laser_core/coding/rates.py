"""Rates of a coded image three ways, and the codebook a receiver must hold besides.

nominal        fixed-length coding: positions x (Σ log2 alphabet per index slot + bits per value)
cross-entropy  Σ -log2 p(symbol) under the priors: what an ideal entropy coder would spend
actual         the bytes of the .lsr file, header and checksum included
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.overrides import TorchFunctionMode

from laser_core.coding.quantize import ValueQuantizer
from laser_core.coding.symbols import Symbols
from laser_core.plugin.contracts import Bottleneck, Codes


@dataclass
class Rates:
    """Bits spent on one image of ``pixels`` pixels (height x width)."""

    pixels: int
    nominal_bits: float
    cross_entropy_bits: float
    actual_bits: int

    def bpp(self) -> dict[str, float]:
        """The three rates in bits per pixel."""
        return {
            "bpp": self.actual_bits / self.pixels,
            "bpp_cross_entropy": self.cross_entropy_bits / self.pixels,
            "bpp_nominal": self.nominal_bits / self.pixels,
        }


def nominal_bits(
    symbols: Symbols, alphabet_sizes: list[int], quantizer: ValueQuantizer | None
) -> float:
    """Bits of a fixed-length code of ``symbols``: every index slot at log2 of its alphabet,
    every value at ``quantizer.bits``, at each position."""
    per_position = 0.0
    if symbols.indices is not None:
        per_position += sum(math.log2(size) for size in alphabet_sizes)
    if symbols.values is not None:
        per_position += symbols.depth * quantizer.bits
    positions = (symbols.indices if symbols.indices is not None else symbols.values).shape[0]
    return positions * per_position


def codebook_bytes(bottleneck: Bottleneck, codes: Codes) -> int:
    """Bytes of the bottleneck's stored tensors that ``decode(codes)`` reads: the codebooks or
    dictionary a receiver needs, but not training statistics such as EMA sums."""
    stored = {t.data_ptr(): t for t in bottleneck.state_dict().values() if t.numel()}
    read: set[int] = set()

    class RecordReads(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            for argument in (*args, *kwargs.values()):
                if isinstance(argument, torch.Tensor) and argument.data_ptr() in stored:
                    read.add(argument.data_ptr())
            return func(*args, **kwargs)

    with torch.no_grad(), RecordReads():
        bottleneck.decode(codes)
    return sum(stored[p].numel() * stored[p].element_size() for p in read)
