"""Between the latent layout encoders emit and the vector layout quantizers work on."""

from __future__ import annotations

import torch


def to_vectors(z: torch.Tensor) -> torch.Tensor:
    """Latents (batch, dim, height, width) -> fp32 vectors (batch * height * width, dim)."""
    return z.float().permute(0, 2, 3, 1).reshape(-1, z.shape[1])


def to_latent(x: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Vectors (batch * height * width, dim) -> latents of ``shape`` (batch, dim, height, width)."""
    batch, dim, height, width = shape
    return x.view(batch, height, width, dim).permute(0, 3, 1, 2)
