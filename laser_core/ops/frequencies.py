"""Probabilities as the integer frequencies an entropy coder uses: the one place where a
prior's floating-point distributions become exact integers."""

from __future__ import annotations

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


def frequency_bits(frequencies: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
    """-log2 of each symbol's quantized probability (rows,): what a range coder spends on
    ``symbols`` (rows,) under ``frequencies`` (rows, alphabet)."""
    chosen = frequencies.gather(-1, symbols.long().cpu().unsqueeze(-1)).squeeze(-1)
    return PRECISION - torch.log2(chosen.double())
