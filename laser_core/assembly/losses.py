"""The generator's losses on images, always in fp32 whatever the autocast dtype: pixel L1/L2
or a mix of both, multi-resolution DCT and image-gradient losses, and LPIPS. Each is weighted
by the recipe's ``losses:`` block and logged under its own key."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from laser_core.assembly.perceptual import LPIPS
from laser_core.recipes.model import LossConfig, ReconKind


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


def pixel_loss(
    recon: ReconKind | dict[ReconKind, float], reconstructions: torch.Tensor, images: torch.Tensor
) -> torch.Tensor:
    """``l1``, ``l2``, or a weighted mix such as {l1: 0.8, l2: 0.2}."""
    mix = {recon: 1.0} if isinstance(recon, str) else recon
    return sum(w * reconstruction_loss(k, reconstructions, images) for k, w in mix.items())


def pyramid(images: torch.Tensor, resolutions: int) -> list[torch.Tensor]:
    """``images`` (B, C, H, W) then each 2x2 average-pooled from the one before."""
    levels = [images]
    for _ in range(resolutions - 1):
        levels.append(F.avg_pool2d(levels[-1], 2))
    return levels


def smallest_side(image_size: int, resolutions: int) -> int:
    """Side of the coarsest level of :func:`pyramid`."""
    return image_size // 2 ** (resolutions - 1)


def dct_matrix(n: int, device: torch.device | None = None) -> torch.Tensor:
    """Orthonormal DCT-II matrix (n, n): row k is frequency k, so ``D @ x`` transforms x."""
    k = torch.arange(n, dtype=torch.float32, device=device)
    matrix = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * math.sqrt(2 / n)
    matrix[0] /= math.sqrt(2)
    return matrix


def dct_2d(images: torch.Tensor) -> torch.Tensor:
    """Orthonormal 2-D DCT-II of each channel: (B, C, H, W) -> coefficients (B, C, H, W)."""
    rows = dct_matrix(images.shape[-2], images.device)
    columns = dct_matrix(images.shape[-1], images.device)
    return rows @ images @ columns.T


def multiresolution_dct_loss(
    reconstructions: torch.Tensor, images: torch.Tensor, resolutions: int
) -> torch.Tensor:
    """Mean L1 distance of whole-image DCT coefficients, averaged over the pyramid's levels.

    The orthonormal DCT keeps L2 distances, so the loss is L1: it charges each missing
    high-frequency coefficient (detail lost to blur) in proportion to its size."""
    pairs = _level_pairs(reconstructions, images, resolutions)
    return torch.stack([F.l1_loss(dct_2d(r), dct_2d(x)) for r, x in pairs]).mean()


def multiresolution_gradient_loss(
    reconstructions: torch.Tensor, images: torch.Tensor, resolutions: int
) -> torch.Tensor:
    """Mean L1 distance of horizontal and vertical finite differences, averaged over the
    pyramid's levels: edges must match, a uniform brightness offset costs nothing."""
    losses = []
    for r, x in _level_pairs(reconstructions, images, resolutions):
        error = r - x
        losses.append(error.diff(dim=-1).abs().mean() + error.diff(dim=-2).abs().mean())
    return torch.stack(losses).mean() / 2


def _level_pairs(
    reconstructions: torch.Tensor, images: torch.Tensor, resolutions: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(reconstruction, image) at each pyramid level, in fp32."""
    levels = pyramid(reconstructions.float(), resolutions), pyramid(images.float(), resolutions)
    return list(zip(*levels, strict=True))


class ImageLosses(nn.Module):
    """The recipe's weighted image losses, named as metrics.jsonl logs them; terms whose
    weight is 0 are neither computed nor logged (``recon`` always is)."""

    def __init__(self, config: LossConfig, perceptual: LPIPS | None):
        super().__init__()
        self.config, self.perceptual = config, perceptual

    def forward(
        self, reconstructions: torch.Tensor, images: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Reconstructions and images (B, C, H, W) -> {name: weighted fp32 scalar}."""
        config = self.config
        terms = {"recon": config.recon_weight * pixel_loss(config.recon, reconstructions, images)}
        if self.perceptual is not None:
            distances = self.perceptual(images, reconstructions)
            terms["perceptual"] = config.perceptual * distances.mean()
        if config.dct:
            terms["dct"] = config.dct * multiresolution_dct_loss(
                reconstructions, images, config.resolutions
            )
        if config.gradient:
            terms["gradient"] = config.gradient * multiresolution_gradient_loss(
                reconstructions, images, config.resolutions
            )
        return terms
