"""Built-in metrics: ``mse``, ``psnr``, ``ssim`` on images, ``codebook-usage`` and ``bpp`` on
codes.

Image metrics see pixels in [0, 1] (from the pipeline's [-1, 1], reconstructions clamped as
they would be when saved), so their numbers compare with the literature's.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from laser_core import (
    BottleneckOutput,
    BuildContext,
    ComponentConfig,
    LaserError,
    Register,
    hookimpl,
    perplexity,
)

log = logging.getLogger(__name__)

MAX_PSNR = 100.0
"""PSNR of an exact reconstruction, in dB: mse is floored at 10**(-MAX_PSNR / 10) so one
perfect example gives a finite value instead of making the average infinite."""


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """Images (B, C, H, W) in [-1, 1] as float32 in [0, 1]."""
    return images.float().add(1).div(2).clamp(0, 1)


def squared_error(images: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
    """Mean squared error per example on [0, 1] pixels: (B, C, H, W) pair -> (B,)."""
    return (to_unit(images) - to_unit(reconstructions)).square().flatten(1).mean(1)


class MSE:
    def per_example(
        self, images: torch.Tensor, reconstructions: torch.Tensor, output: BottleneckOutput
    ) -> torch.Tensor:
        return squared_error(images, reconstructions)

    def summarize(self, values: torch.Tensor) -> dict[str, float]:
        return {"mse": values.mean().item()}


class PSNR:
    """Per-example PSNR (data range 1) averaged: an average in dB, as papers report."""

    def per_example(
        self, images: torch.Tensor, reconstructions: torch.Tensor, output: BottleneckOutput
    ) -> torch.Tensor:
        mse = squared_error(images, reconstructions).clamp_min(10 ** (-MAX_PSNR / 10))
        return -10 * torch.log10(mse)

    def summarize(self, values: torch.Tensor) -> dict[str, float]:
        return {"psnr": values.mean().item()}


class SSIM:
    """SSIM per example with the standard 11x11 Gaussian window (sigma 1.5), torchmetrics'
    convention, computed here: importing torchmetrics costs seconds (torchvision, dynamo).

    Images smaller than the window (8x8 digits) get a narrower Gaussian whose window fits
    inside them; such SSIM values are not comparable with those of larger images. The map is
    averaged over every pixel, borders reflected (torchmetrics' convention), not only where
    the window fits as in scikit-image's default and Wang et al.'s code; on noisy 32x32
    patches the two differ by about 0.01.
    """

    def per_example(
        self, images: torch.Tensor, reconstructions: torch.Tensor, output: BottleneckOutput
    ) -> torch.Tensor:
        sigma = window_sigma(*images.shape[-2:])
        return structural_similarity(to_unit(reconstructions), to_unit(images), sigma)

    def summarize(self, values: torch.Tensor) -> dict[str, float]:
        return {"ssim": values.mean().item()}


def structural_similarity(x: torch.Tensor, y: torch.Tensor, sigma: float) -> torch.Tensor:
    """SSIM of images (B, C, H, W) in [0, 1] (data range 1) -> (B,): local means, variances
    and covariance under a Gaussian window of 2 * int(3.5 * sigma + 0.5) + 1 pixels, borders
    reflected, the SSIM map averaged over every pixel and channel."""
    radius = int(3.5 * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    gaussian = torch.exp(-(offsets / sigma).square() / 2)
    gaussian = gaussian / gaussian.sum()
    channels = x.shape[1]
    window = (gaussian[:, None] * gaussian[None, :]).expand(channels, 1, -1, -1)
    moments = torch.cat([x, y, x * x, y * y, x * y])  # (5 * B, C, H, W)
    padded = nn.functional.pad(moments, (radius,) * 4, mode="reflect")
    mean_x, mean_y, xx, yy, xy = nn.functional.conv2d(padded, window, groups=channels).split(len(x))
    var_x = (xx - mean_x.square()).clamp_min(0)
    var_y = (yy - mean_y.square()).clamp_min(0)
    covariance = xy - mean_x * mean_y
    c1, c2 = 0.01**2, 0.03**2
    similarity = ((2 * mean_x * mean_y + c1) * (2 * covariance + c2)) / (
        (mean_x.square() + mean_y.square() + c1) * (var_x + var_y + c2)
    )
    return similarity.flatten(1).mean(1)


def window_sigma(height: int, width: int, sigma: float = 1.5) -> float:
    """``sigma`` when its Gaussian window fits the image, else the sigma whose window just
    fits: the window is 2 * int(3.5 * sigma + 0.5) + 1 pixels."""
    radius = (min(height, width) - 1) // 2
    if radius < 1:
        raise LaserError(f"ssim needs images of at least 3x3 pixels, got {height}x{width}")
    return sigma if int(3.5 * sigma + 0.5) <= radius else radius / 3.5


class CodebookUsage:
    """Fraction of codes used and code perplexity, averaged over depth slots.

    How many of each depth slot's codes the bottleneck uses, and how evenly.

    per_example gives code counts (B, sum of alphabet sizes), each slot's alphabet in its own
    columns, so summing over all examples gives each slot's histogram.
    """

    def __init__(self, config: ComponentConfig, context: BuildContext):
        spec = context.code_spec
        if spec is None:
            raise LaserError("codebook-usage needs the bottleneck's code spec; build the model")
        if not spec.alphabet_sizes:
            log.warning("codebook-usage: the bottleneck's codes are continuous; it reports nothing")
        self.alphabet_sizes = spec.alphabet_sizes
        self.offsets = torch.tensor([0, *spec.alphabet_sizes[:-1]]).cumsum(0)

    def per_example(
        self, images: torch.Tensor, reconstructions: torch.Tensor, output: BottleneckOutput
    ) -> torch.Tensor:
        indices = output.codes.indices  # (B, h, w, depth)
        counts = torch.zeros(
            images.shape[0], sum(self.alphabet_sizes), dtype=torch.int32, device=images.device
        )
        if indices is None:  # continuous codes: nothing to count
            return counts
        if indices.shape[-1] != len(self.alphabet_sizes):
            raise LaserError(
                f"codebook-usage: codes have depth {indices.shape[-1]} but the code spec "
                f"lists {len(self.alphabet_sizes)} alphabets"
            )
        symbols = (indices + self.offsets.to(indices.device)).flatten(1)
        return counts.scatter_add_(1, symbols, torch.ones_like(symbols, dtype=torch.int32))

    def summarize(self, values: torch.Tensor) -> dict[str, float]:
        """codebook_usage: fraction of codes used at least once; codebook_perplexity: exp of
        the entropy of code frequencies (K when K codes are used equally). Both averaged
        over depth slots; nothing when no codes were counted."""
        totals = values.sum(0, dtype=torch.float64)
        usages, perplexities = [], []
        for histogram in totals.split(self.alphabet_sizes):
            if histogram.sum() == 0:
                continue
            usages.append((histogram > 0).double().mean().item())
            perplexities.append(perplexity(histogram).item())
        if not usages:
            return {}
        return {
            "codebook_usage": sum(usages) / len(usages),
            "codebook_perplexity": sum(perplexities) / len(perplexities),
        }


class BitsPerPixel:
    """The codes' bits per pixel under the bottleneck's own entropy model (``factorized``,
    ``hyperprior``): the rate rate-distortion training weighs, of rounded codes in eval. A
    file's real rate is ``laser compress``'s, a few bytes of header and padding above."""

    def per_example(
        self, images: torch.Tensor, reconstructions: torch.Tensor, output: BottleneckOutput
    ) -> torch.Tensor:
        if output.bits is None:
            raise LaserError(
                "metric 'bpp' needs a bottleneck with an entropy model (factorized, hyperprior)"
            )
        return output.bits.float() / images[0, 0].numel()

    def summarize(self, values: torch.Tensor) -> dict[str, float]:
        return {"bpp": values.mean().item()}


@hookimpl
def laser_register_metrics(register: Register) -> None:
    register("mse", lambda config, context: MSE(), summary="mean squared error on [0, 1] pixels")
    register(
        "psnr",
        lambda config, context: PSNR(),
        summary=f"per-example PSNR in dB (data range 1, capped at {MAX_PSNR:g}), averaged",
    )
    register(
        "ssim",
        lambda config, context: SSIM(),
        summary="structural similarity (Gaussian window, torchmetrics' borders), averaged",
    )
    register("codebook-usage", CodebookUsage)
    register(
        "bpp",
        lambda config, context: BitsPerPixel(),
        summary="bits per pixel of the codes under the bottleneck's entropy model",
    )
