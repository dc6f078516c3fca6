"""rFID and rKID through torchmetrics on features of one's own, and LPIPS as a metric.

The feature extractor here is a small random convolutional network saved as a file, the way
a user hands LASER a classifier of their own; Inception weights cannot be had offline.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from laser_core.errors import LaserError
from laser_core.plugin.contracts import BottleneckOutput, BuildContext, Codes
from laser_core.testing import check_component
from laser_core.training.build import build_component

NO_OUTPUT = BottleneckOutput(torch.zeros(1), torch.zeros(()), Codes(None))


def small_extractor() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten()
    )


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torch.export's .pt2 file with a dynamic batch."""
    path = tmp_path_factory.mktemp("features") / "features.pt2"
    example = (torch.zeros(4, 3, 16, 16),)
    program = torch.export.export(
        small_extractor(), example, dynamic_shapes=({0: torch.export.Dim("batch")},)
    )
    torch.export.save(program, str(path))
    return path


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    """64 real photo patches (64, 3, 16, 16) in [-1, 1]."""
    splits = build_component(
        "datasets", {"name": "photo-patches", "size": 16, "train_patches": 1, "val_patches": 64}
    )
    return torch.stack([splits.val[i]["image"] for i in range(64)])


def summarize(metric, images: torch.Tensor, reconstructions: torch.Tensor) -> dict[str, float]:
    """Per-example values batch by batch, concatenated as evaluate() gathers them."""
    values = [
        metric.per_example(i, r, NO_OUTPUT)
        for i, r in zip(images.split(16), reconstructions.split(16), strict=True)
    ]
    return metric.summarize(torch.cat(values))


def test_fid_of_a_set_against_itself_is_zero_and_grows_with_noise(exported, photos):
    fid = check_component("metrics", "fid", {"features": str(exported)})
    assert fid.per_example(photos[:3], photos[:3], NO_OUTPUT).shape == (3, 2, 32)
    torch.manual_seed(1)
    scores = [
        summarize(fid, photos, photos + scale * torch.randn_like(photos))["fid"]
        for scale in (0.0, 0.1, 0.4)
    ]
    assert abs(scores[0]) < 1e-4 * scores[1]
    assert 0 < scores[1] < scores[2]


def test_kid_grows_with_noise_and_repeats_its_subsets(tmp_path, photos):
    """The estimate is unbiased for independent samples; a set against itself shares every
    sample, which makes it slightly negative rather than 0."""
    path = tmp_path / "features.ts"
    torch.jit.script(small_extractor()).save(str(path))  # TorchScript works too
    kid = check_component("metrics", "kid", {"features": str(path), "subsets": 10})
    torch.manual_seed(1)
    same, slight, heavy = (
        summarize(kid, photos, photos + scale * torch.randn_like(photos))
        for scale in (0.0, 0.4, 1.0)
    )
    assert set(same) == {"kid", "kid_std"}
    assert same["kid"] < slight["kid"] < heavy["kid"]
    assert abs(same["kid"]) < 0.1 * heavy["kid"]
    assert summarize(kid, photos, photos) == same  # subsets come from a fixed seed


def test_fid_names_the_missing_inception_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(LaserError) as caught:
        check_component("metrics", "fid", {})
    message = str(caught.value)
    assert "weights-inception-2015-12-05-6726825d.pth" in message
    assert str(tmp_path / "hub" / "checkpoints") in message


def test_features_that_are_not_a_saved_module_are_explained(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("not a module")
    with pytest.raises(LaserError, match=r"is not a module saved by torch\.export\.save"):
        check_component("metrics", "kid", {"features": str(path)})
    with pytest.raises(LaserError, match="neither 'inception' nor a file"):
        check_component("metrics", "fid", {"features": str(tmp_path / "missing.pt2")})


def test_lpips_metric_on_a_random_backbone_is_zero_for_identical_images(photos):
    """RANDOMLY INITIALISED backbone (backbone: random): the pipeline, not LPIPS values."""
    context = BuildContext(image_size=16)
    metric = check_component("metrics", "lpips", {"net": "vgg", "backbone": "random"}, context)
    values = metric.per_example(photos[:4], photos[:4], NO_OUTPUT)
    assert values.shape == (4,) and values.abs().max() < 1e-6
    noisy = metric.per_example(photos[:4], photos[:4].flip(-1), NO_OUTPUT)
    assert metric.summarize(noisy)["lpips"] > 0
