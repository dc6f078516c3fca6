"""Gradients that pass through a step autograd cannot differentiate (rounding, a nearest code,
a sparse solve)."""

from __future__ import annotations

import torch


def straight_through(value: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """``value`` in the forward pass with ``source``'s gradient in the backward pass (the
    straight-through estimator): value + (source - sg(source)). The added term is exactly zero,
    so the result equals ``value`` bit for bit, and ``decode(encode(z))`` equals what forward
    returns; both tensors share one shape, e.g. vectors (N, dim)."""
    return value + (source - source.detach())
