"""The built-in metrics give known numbers on known inputs."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from laser_core.plugin.contracts import BottleneckOutput, BuildContext, Codes, CodeSpec
from laser_core.testing import check_component
from laser_plugins.metrics import MAX_PSNR, window_sigma


def build(name: str, spec: CodeSpec | None = None):
    return check_component("metrics", name, context=BuildContext(code_spec=spec))


def output(indices: torch.Tensor | None = None) -> BottleneckOutput:
    return BottleneckOutput(torch.zeros(1), torch.zeros(()), Codes(indices))


def test_mse_and_psnr_on_a_known_offset():
    """Offsets of 0.2 and 0.02 in [-1, 1] are 0.1 and 0.01 on [0, 1] pixels."""
    images = torch.zeros(2, 3, 8, 8)
    reconstructions = images + torch.tensor([0.2, 0.02]).view(2, 1, 1, 1)
    mse = build("mse").per_example(images, reconstructions, output())
    psnr = build("psnr").per_example(images, reconstructions, output())
    torch.testing.assert_close(mse, torch.tensor([1e-2, 1e-4]))
    torch.testing.assert_close(psnr, 10 * torch.log10(1 / mse))
    torch.testing.assert_close(psnr, torch.tensor([20.0, 40.0]))
    assert build("psnr").summarize(psnr) == {"psnr": pytest.approx(30.0)}
    assert build("mse").summarize(mse) == {"mse": pytest.approx(0.00505)}


def test_psnr_of_identical_images_is_capped_not_infinite():
    images = torch.rand(3, 1, 8, 8) * 2 - 1
    psnr = build("psnr").per_example(images, images.clone(), output())
    torch.testing.assert_close(psnr, torch.full((3,), MAX_PSNR))
    assert build("psnr").summarize(psnr)["psnr"] == pytest.approx(MAX_PSNR)


def test_image_metrics_clamp_reconstructions_to_the_image_range():
    images = torch.ones(1, 3, 8, 8)
    mse = build("mse").per_example(images, images + 5, output())
    assert mse.item() == 0


@pytest.mark.parametrize("size", [3, 8, 32])
def test_ssim_of_identical_images_is_one_at_any_size(size: int):
    images = torch.rand(2, 3, size, size) * 2 - 1
    ssim = build("ssim").per_example(images, images.clone(), output())
    assert ssim.shape == (2,)
    torch.testing.assert_close(ssim, torch.ones(2))


@pytest.mark.parametrize("size", [8, 32])
def test_ssim_equals_scikit_image_with_the_same_window_borders_and_data_range(size: int):
    """scikit-image's Gaussian-weighted SSIM (sigma 1.5 truncated at 3.5 sigma, population
    covariances, data range 1) on [0, 1] pixels, with torchmetrics' border convention: the
    image reflected by the window's radius (numpy's 'reflect') and the SSIM map averaged over
    the original pixels; 8x8 images take the narrower window LASER documents."""
    torch.manual_seed(size)
    images = torch.rand(3, 3, size, size) * 2 - 1
    reconstructions = (images + 0.3 * torch.randn_like(images)).clamp(-1, 1)
    ssim = build("ssim").per_example(images, reconstructions, output())
    sigma = window_sigma(size, size)
    pad = int(3.5 * sigma + 0.5)

    def reference(x: torch.Tensor, y: torch.Tensor) -> float:
        padded = [
            np.pad(
                ((t.numpy() + 1) / 2).astype(np.float64),
                ((0, 0), (pad, pad), (pad, pad)),
                "reflect",
            )
            for t in (x, y)
        ]
        _, full = structural_similarity(
            *padded,
            data_range=1.0,
            gaussian_weights=True,
            sigma=sigma,
            use_sample_covariance=False,
            channel_axis=0,
            full=True,
        )
        return full[:, pad:-pad, pad:-pad].mean()

    expected = [reference(x, y) for x, y in zip(images, reconstructions, strict=True)]
    assert min(expected) > 0.05 and max(expected) < 0.95  # far from the trivial values
    torch.testing.assert_close(ssim, torch.tensor(expected, dtype=torch.float32), rtol=0, atol=1e-5)


def test_ssim_falls_as_noise_grows():
    torch.manual_seed(0)
    images = torch.rand(1, 1, 16, 16) * 2 - 1
    noisy = [images + scale * torch.randn_like(images) for scale in (0.05, 0.2, 0.8)]
    ssim = [build("ssim").per_example(images, n, output()).item() for n in noisy]
    assert 1 > ssim[0] > ssim[1] > ssim[2]


def test_ssim_window_is_the_standard_one_when_it_fits_and_shrinks_inside_small_images():
    assert window_sigma(11, 64) == 1.5
    for side in (3, 8, 10):
        sigma = window_sigma(side, side)
        assert 2 * int(3.5 * sigma + 0.5) + 1 <= side


def test_codebook_usage_counts_each_depth_slot_against_its_own_alphabet():
    """Slot 0 (4 codes) uses codes 0 and 1 equally: usage 1/2, perplexity 2.
    Slot 1 (2 codes) uses code 1 only: usage 1/2, perplexity 1."""
    metric = build("codebook-usage", CodeSpec([4, 2]))
    indices = torch.tensor([[[[0, 1], [1, 1]]], [[[0, 1], [1, 1]]]])  # (2, 1, 2, depth 2)
    counts = metric.per_example(torch.zeros(2, 1, 4, 4), torch.zeros(2, 1, 4, 4), output(indices))
    assert counts.tolist() == [[1, 1, 0, 0, 0, 2], [1, 1, 0, 0, 0, 2]]
    summary = metric.summarize(counts)
    assert summary == {
        "codebook_usage": pytest.approx(0.5),
        "codebook_perplexity": pytest.approx(1.5),
    }


def test_codebook_usage_summary_of_gathered_batches_equals_that_of_one_batch():
    metric = build("codebook-usage", CodeSpec([8]))
    indices = torch.randint(0, 5, (6, 2, 2, 1), generator=torch.Generator().manual_seed(0))
    images = torch.zeros(6, 1, 4, 4)
    whole = metric.per_example(images, images, output(indices))
    parts = [metric.per_example(images[:3], images[:3], output(i)) for i in indices.split(3)]
    assert metric.summarize(torch.cat(parts)) == metric.summarize(whole)
    frequencies = torch.bincount(indices.flatten(), minlength=8).double() / indices.numel()
    entropy = -sum(p * math.log(p) for p in frequencies.tolist() if p > 0)
    assert metric.summarize(whole)["codebook_perplexity"] == pytest.approx(math.exp(entropy))


def test_codebook_usage_reports_nothing_for_continuous_codes(caplog):
    with caplog.at_level(logging.WARNING):
        metric = build("codebook-usage", CodeSpec([], has_values=True))
    assert "continuous" in caplog.text
    images = torch.zeros(2, 1, 4, 4)
    values = metric.per_example(images, images, output(None))
    assert values.shape == (2, 0)
    assert metric.summarize(values) == {}
