"""How a bottleneck uses its alphabet: one definition of counts, perplexity and used codes for
the bottlenecks' training statistics, the codebook-usage metric and the analysis plots."""

from __future__ import annotations

import torch


def code_counts(indices: torch.Tensor, size: int) -> torch.Tensor:
    """How often each of ``size`` codes occurs in ``indices`` (any shape): long (size,).

    A scatter into zeros rather than ``torch.bincount``, which reads the indices' range back to
    the host on CUDA and so stalls the stream every step."""
    flat = indices.flatten()
    counts = torch.zeros(size, dtype=torch.long, device=indices.device)
    return counts.scatter_add_(0, flat, torch.ones_like(flat))


def perplexity(counts: torch.Tensor) -> torch.Tensor:
    """exp of the entropy of code frequencies from counts per code (size,): ``size`` when every
    code is used alike, 1 when one code is; 1 for no counts at all."""
    frequencies = counts.double() / counts.sum().clamp(min=1)
    return torch.special.entr(frequencies).sum().exp()


def usage_stats(counts: torch.Tensor) -> dict[str, torch.Tensor]:
    """Perplexity and the number of codes used, from counts per code (size,), as the fp32
    tensors a bottleneck's ``stats`` holds."""
    return {"perplexity": perplexity(counts).float(), "used_codes": (counts > 0).sum().float()}
