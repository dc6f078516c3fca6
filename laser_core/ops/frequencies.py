"""Probabilities as the integer frequencies an entropy coder uses: the one place where a
prior's floating-point distributions become exact integers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

PRECISION = 24
"""Every frequency row sums to 2**PRECISION, the probability resolution of the range coder."""
TOTAL = 2**PRECISION


def to_frequencies(log_probs: torch.Tensor) -> torch.Tensor:
    """Frequencies int64 (rows, alphabet) of distributions given as natural-log probabilities
    (rows, alphabet): each row sums to 2**PRECISION and gives every symbol at least 1, so any
    symbol can be coded. The rounding remainder goes to each row's likeliest symbol."""
    alphabet = log_probs.shape[-1]
    if alphabet > TOTAL // 2:
        raise ValueError(f"an alphabet of {alphabet} symbols needs more than {PRECISION} bits")
    probabilities = torch.softmax(log_probs.detach().double().cpu(), dim=-1)
    frequencies = torch.floor(probabilities * (TOTAL - alphabet)).long() + 1
    remainder = TOTAL - frequencies.sum(-1, keepdim=True)
    likeliest = probabilities.argmax(-1, keepdim=True)
    return frequencies.scatter_add(-1, likeliest, remainder)


def exact_probabilities(frequencies: torch.Tensor) -> np.ndarray:
    """Integer frequencies (..., alphabet) as float64 probabilities, each exactly an integer
    over 2**PRECISION: what the range coder is handed, so its decisions stay integer ones."""
    return (frequencies.double() / TOTAL).numpy()


def frequency_bits(frequencies: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
    """-log2 of each symbol's quantized probability (rows,): what a range coder spends on
    ``symbols`` (rows,) under ``frequencies`` (rows, alphabet)."""
    return chosen_bits(frequencies.gather(-1, symbols.long().cpu().unsqueeze(-1)).squeeze(-1))


def chosen_bits(chosen: torch.Tensor) -> torch.Tensor:
    """-log2 of the quantized probabilities whose frequencies are ``chosen`` (any shape)."""
    return PRECISION - torch.log2(chosen.double())


TAIL_MASS = 2.0**-PRECISION
"""Probability a coding table leaves off at each end of its support: a symbol out there is
clamped to the table's edge (its distortion counted, as the decoder sees it)."""


@dataclass
class CodingTable:
    """Integer distributions for one stage of a whole-image code: row r codes the integers
    ``offsets[r]`` to ``offsets[r] + sizes[r] - 1`` with ``frequencies[r, :sizes[r]]`` (int64
    (rows, alphabet), zero past each row's size, each row summing to 2**PRECISION with every
    symbol at least 1). Built once from a learnt density and stored, so a decoder reads the
    same integers on every machine."""

    frequencies: torch.Tensor
    offsets: torch.Tensor
    sizes: torch.Tensor

    @property
    def rows(self) -> int:
        return int(self.sizes.shape[0])

    def row(self, row: int) -> torch.Tensor:
        """Frequencies int64 (sizes[row],) of one row."""
        return self.frequencies[row, : int(self.sizes[row])]

    def clamp(self, symbols: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``symbols`` (any shape, long) moved into the support of their ``rows`` (same shape):
        what the table can code, and what a decoder will see."""
        low = self.offsets[rows]
        return torch.minimum(torch.maximum(symbols, low), low + self.sizes[rows] - 1)


def coding_table(probabilities: torch.Tensor, first_symbol: int) -> CodingTable:
    """The coding table of distributions over the integers ``first_symbol``, ``first_symbol +
    1``, ... given as probabilities (rows, support) of each integer (float64, from a density's
    CDF): each row is trimmed to the integers between its two tails of mass TAIL_MASS, then
    turned into integer frequencies."""
    probabilities = probabilities.detach().double().cpu().clamp_min(0)
    cumulative = probabilities.cumsum(-1)
    total = cumulative[:, -1:]
    first = (cumulative < TAIL_MASS * total).sum(-1)
    last = (cumulative <= total * (1 - TAIL_MASS)).sum(-1)
    last = torch.maximum(last.clamp_max(probabilities.shape[1] - 1), first)
    sizes = last - first + 1
    frequencies = torch.zeros(probabilities.shape[0], int(sizes.max()), dtype=torch.long)
    for row in range(probabilities.shape[0]):
        kept = probabilities[row, int(first[row]) : int(last[row]) + 1]
        frequencies[row, : int(sizes[row])] = to_frequencies(kept.clamp_min(1e-300).log()[None])[0]
    return CodingTable(frequencies, first + first_symbol, sizes)
