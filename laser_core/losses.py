"""Reconstruction losses, always computed in fp32 whatever the autocast dtype."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def reconstruction_loss(
    kind: str, reconstructions: torch.Tensor, images: torch.Tensor
) -> torch.Tensor:
    """Mean ``l1`` or ``l2`` error between (B, C, H, W) reconstructions and images."""
    reconstructions, images = reconstructions.float(), images.float()
    if kind == "l1":
        return F.l1_loss(reconstructions, images)
    if kind == "l2":
        return F.mse_loss(reconstructions, images)
    raise ValueError(f"unknown reconstruction loss '{kind}'")
