"""The image losses give known numbers on known inputs, and only the weighted ones are logged."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
import torch

from laser_core.assembly.losses import (
    ImageLosses,
    dct_2d,
    multiresolution_dct_loss,
    multiresolution_gradient_loss,
    pixel_loss,
)
from laser_core.recipes.model import LossConfig


def test_dct_2d_matches_scipys_orthonormal_dct():
    images = torch.randn(2, 3, 8, 12, dtype=torch.float64)
    expected = scipy.fft.dctn(images.numpy(), type=2, norm="ortho", axes=(-2, -1))
    torch.testing.assert_close(
        dct_2d(images.float()).double(), torch.from_numpy(expected), rtol=0, atol=1e-5
    )


def numpy_levels(
    reconstructions: torch.Tensor, images: torch.Tensor, resolutions: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(reconstruction, image) float64 at each pyramid level, the 2x2 means written out."""
    pair = [reconstructions.double().numpy(), images.double().numpy()]
    levels = [tuple(pair)]
    for _ in range(resolutions - 1):
        b, c, h, w = pair[0].shape
        pair = [x.reshape(b, c, h // 2, 2, w // 2, 2).mean((3, 5)) for x in pair]
        levels.append(tuple(pair))
    return levels


def dct_loss_reference(
    reconstructions: torch.Tensor, images: torch.Tensor, resolutions: int
) -> float:
    """Mean over levels of the mean |difference| of scipy's orthonormal DCT coefficients."""

    def coefficients(x: np.ndarray) -> np.ndarray:
        return scipy.fft.dctn(x, type=2, norm="ortho", axes=(-2, -1))

    levels = numpy_levels(reconstructions, images, resolutions)
    return float(np.mean([np.abs(coefficients(r) - coefficients(x)).mean() for r, x in levels]))


def gradient_loss_reference(
    reconstructions: torch.Tensor, images: torch.Tensor, resolutions: int
) -> float:
    """Mean over levels of the error's mean |np.diff| along width plus along height, halved."""
    levels = numpy_levels(reconstructions, images, resolutions)
    per_level = [
        np.abs(np.diff(r - x, axis=-1)).mean() + np.abs(np.diff(r - x, axis=-2)).mean()
        for r, x in levels
    ]
    return float(np.mean(per_level)) / 2


def random_pair(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Reconstructions and images (2, 3, height, width) uniform in [-1, 1]."""
    generator = torch.Generator().manual_seed(0)
    return tuple(torch.rand(2, 3, height, width, generator=generator) * 2 - 1 for _ in range(2))


def test_dct_loss_is_scipys_dct_l1_averaged_over_the_pyramid():
    reconstructions, images = random_pair(16, 24)  # not square: rows and columns differ
    loss = multiresolution_dct_loss(reconstructions, images, resolutions=3)
    expected = dct_loss_reference(reconstructions, images, 3)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_gradient_loss_is_numpys_finite_differences_averaged_over_the_pyramid():
    reconstructions, images = random_pair(16, 24)
    loss = multiresolution_gradient_loss(reconstructions, images, resolutions=3)
    expected = gradient_loss_reference(reconstructions, images, 3)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_gradient_loss_ignores_a_brightness_offset_and_counts_a_ramp():
    images = torch.rand(1, 3, 16, 16)
    offset = multiresolution_gradient_loss(images + 0.3, images, resolutions=3)
    assert offset.item() == pytest.approx(0, abs=1e-6)  # float rounding of the offset only
    ramp = 0.1 * torch.arange(16.0).expand(1, 1, 16, 16)  # horizontal differences of 0.1
    flat = torch.zeros(1, 1, 16, 16)
    # mean |horizontal difference| 0.1, vertical 0, halved: the sum of both directions / 2
    loss = multiresolution_gradient_loss(ramp, flat, resolutions=1)
    assert loss.item() == pytest.approx(0.05)


def test_pixel_loss_mixes_l1_and_l2_by_their_weights():
    images = torch.zeros(1, 1, 2, 2)
    reconstructions = torch.full((1, 1, 2, 2), 0.5)  # l1 0.5, l2 0.25
    assert pixel_loss("l1", reconstructions, images).item() == 0.5
    mixed = pixel_loss({"l1": 0.8, "l2": 0.2}, reconstructions, images)
    assert mixed.item() == pytest.approx(0.8 * 0.5 + 0.2 * 0.25)


def test_image_losses_compute_and_name_only_the_weighted_terms():
    images, reconstructions = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    plain = ImageLosses(LossConfig(recon="l1", recon_weight=2.0), perceptual=None)
    terms = plain(reconstructions, images)
    assert list(terms) == ["recon"]
    assert terms["recon"].item() == pytest.approx(
        2 * (reconstructions - images).abs().mean().item()
    )
    config = LossConfig(dct=0.5, gradient=0.25, resolutions=2)
    terms = ImageLosses(config, perceptual=None)(reconstructions, images)
    assert list(terms) == ["recon", "dct", "gradient"]
    dct = dct_loss_reference(reconstructions, images, 2)
    gradient = gradient_loss_reference(reconstructions, images, 2)
    assert terms["dct"].item() == pytest.approx(0.5 * dct, rel=1e-5)
    assert terms["gradient"].item() == pytest.approx(0.25 * gradient, rel=1e-5)


def test_losses_are_fp32_under_bf16_autocast():
    images = torch.rand(2, 3, 8, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        reconstructions = torch.nn.functional.conv2d(images, torch.eye(3).view(3, 3, 1, 1))
        terms = ImageLosses(LossConfig(dct=1.0, gradient=1.0), perceptual=None)(
            reconstructions, images
        )
    assert reconstructions.dtype == torch.bfloat16
    assert all(term.dtype == torch.float32 for term in terms.values())
