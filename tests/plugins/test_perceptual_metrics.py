"""rFID and rKID through torchmetrics on features of one's own, and LPIPS as a metric.

The feature extractor here is a small random convolutional network saved as a file, the way
a user hands LASER a classifier of their own; Inception weights cannot be had offline.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from laser_core.assembly.build import build_component
from laser_core.assembly.weights import known_weights
from laser_core.errors import LaserError
from laser_core.plugin.contracts import BottleneckOutput, BuildContext, Codes
from laser_core.testing import check_component

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


def test_fid_is_the_frechet_distance_of_the_feature_gaussians(exported, photos):
    """scipy's matrix square root on the same features: |mu1 - mu2|^2 + tr(S1 + S2 - 2
    sqrt(S1 S2)), covariances unbiased (N - 1)."""
    fid = check_component("metrics", "fid", {"features": str(exported)})
    torch.manual_seed(2)
    values = torch.cat(
        [fid.per_example(i, i + 0.3 * torch.randn_like(i), NO_OUTPUT) for i in photos.split(16)]
    )
    real, fake = (values[:, k].double().numpy() for k in (0, 1))
    mean = real.mean(0) - fake.mean(0)
    covariances = np.cov(real, rowvar=False), np.cov(fake, rowvar=False)
    root = scipy.linalg.sqrtm(covariances[0] @ covariances[1]).real
    expected = mean @ mean + np.trace(covariances[0] + covariances[1] - 2 * root)
    assert fid.summarize(values)["fid"] == pytest.approx(expected, rel=1e-4)


def test_kid_on_a_subset_of_every_example_is_the_unbiased_polynomial_mmd(exported, photos):
    """With subset_size at least the count, each subset is every example in some order, so
    KID is the unbiased MMD² of Bińkowski et al. with k(x, y) = (x.y / d + 1)^3, and its spread
    over subsets is 0."""
    kid = check_component(
        "metrics", "kid", {"features": str(exported), "subsets": 3, "subset_size": 64}
    )
    torch.manual_seed(3)
    values = torch.cat(
        [kid.per_example(i, i + 0.3 * torch.randn_like(i), NO_OUTPUT) for i in photos.split(16)]
    )
    x, y = (values[:, k].double() for k in (0, 1))
    m, d = x.shape

    def kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a @ b.T / d + 1) ** 3

    def off_diagonal_mean(k: torch.Tensor) -> torch.Tensor:
        return (k.sum() - k.diagonal().sum()) / (m * (m - 1))

    mmd = off_diagonal_mean(kernel(x, x)) + off_diagonal_mean(kernel(y, y))
    mmd -= 2 * kernel(x, y).mean()
    result = kid.summarize(values)
    assert result["kid"] == pytest.approx(mmd.item(), rel=1e-4)
    assert result["kid_std"] == pytest.approx(0.0, abs=1e-6)


def test_fid_and_kid_load_inception_from_the_torch_cache(tmp_path, monkeypatch, photos):
    """torch-fidelity's Inception with random weights, saved under the cache name: what the
    metrics build holds is that file's every tensor."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with monkeypatch.context() as building:  # no weights to load: keep the random ones
        building.setattr(torch, "load", lambda *args, **kwargs: {})
        building.setattr(FeatureExtractorInceptionV3, "load_state_dict", lambda self, s: None)
        torch.manual_seed(0)
        network = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], "unused")
    state = network.state_dict()
    path = known_weights()["inception"].path
    path.parent.mkdir(parents=True)
    torch.save(state, path)

    for name in ("fid", "kid"):
        # built, not put through the whole kit: each Inception forward costs seconds
        metric = build_component("metrics", {"name": name}, BuildContext(image_size=16))
        loaded = metric.extractor.inception.state_dict()
        assert loaded.keys() == state.keys()
        for key, tensor in state.items():
            assert torch.equal(loaded[key], tensor), key
    values = metric.per_example(photos[:2], photos[:2], NO_OUTPUT)
    assert values.shape == (2, 2, 2048) and torch.equal(values[:, 0], values[:, 1])


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
