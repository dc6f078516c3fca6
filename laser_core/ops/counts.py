"""Categorical distributions counted on symbols: the rule both counts priors share, the one
``laser priors`` stores in priors.safetensors (coding/priors.py) and the ``counts`` prior
plugin (plugins/priors/counts.py)."""

from __future__ import annotations

import torch

SMOOTHING = 0.5
"""Added to every count, so that a symbol never seen in training still has a finite cost."""


def symbol_counts(symbols: torch.Tensor, alphabet_size: int) -> torch.Tensor:
    """How often each symbol occurs: int64 (alphabet_size,) of symbols long (any shape)."""
    return torch.bincount(symbols.flatten(), minlength=alphabet_size)


def count_probabilities(counts: torch.Tensor) -> torch.Tensor:
    """Smoothed relative frequencies float64 (alphabet,) of counts (alphabet,). Computed by
    numpy on the CPU, so that every reader rebuilds exactly the same numbers (the counts
    coder of ``.lsr`` files of version 1 depends on it)."""
    smoothed = counts.detach().cpu().double().numpy() + SMOOTHING
    return torch.from_numpy(smoothed / smoothed.sum())
