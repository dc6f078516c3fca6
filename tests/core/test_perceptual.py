"""LPIPS through the lpips package's real code path, and what happens without its weights.

No ImageNet backbone can be downloaded here, so the LPIPS numbers below come from the
package's own linear heads on a RANDOMLY INITIALISED backbone (backbone: random): they test
the pipeline, not LPIPS itself.
"""

from __future__ import annotations

from pathlib import Path

import lpips
import pytest
import torch
from torchvision import models

from laser_core.assembly.perceptual import build_lpips
from laser_core.assembly.weights import cache_dir, known_weights
from laser_core.errors import LaserError
from laser_core.recipes.model import load_recipe
from laser_core.training.train import train
from tests.helpers import TINY_RECIPE


@pytest.fixture
def empty_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A torch cache with no weights in it, whatever this machine has cached."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def test_lpips_on_a_random_backbone_uses_the_packages_heads_and_grows_with_noise():
    metric = build_lpips("alex", "random", 3, 32, "test")  # RANDOM backbone: not LPIPS
    heads = torch.load(
        Path(lpips.__file__).parent / "weights/v0.1/alex.pth", map_location="cpu", weights_only=True
    )
    torch.testing.assert_close(metric.lpips.lin0.model[1].weight, heads["lin0.model.1.weight"])
    torch.manual_seed(0)
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    distances = [
        metric(images, images + scale * torch.randn_like(images)) for scale in (0, 0.1, 0.5)
    ]
    assert distances[0].shape == (4,)
    assert distances[0].abs().max() < 1e-6
    assert (distances[1] > 0).all() and (distances[2] > distances[1]).all()
    assert not any(p.requires_grad for p in metric.parameters())


def test_lpips_passes_gradients_to_the_reconstruction_and_accepts_gray_images():
    metric = build_lpips("squeeze", "random", 1, 17, "test")  # RANDOM backbone: not LPIPS
    images = torch.rand(2, 1, 17, 17) * 2 - 1
    reconstructions = torch.zeros(2, 1, 17, 17, requires_grad=True)
    metric(images, reconstructions).sum().backward()
    assert reconstructions.grad is not None and reconstructions.grad.abs().sum() > 0


def test_a_missing_backbone_names_the_file_and_where_to_put_it(empty_torch_home: Path):
    with pytest.raises(LaserError) as caught:
        build_lpips("vgg", "pretrained", 3, 32, "losses.perceptual")
    message = str(caught.value)
    assert "vgg16-397923af.pth" in message
    assert str(empty_torch_home) in message
    assert "laser weights import vgg16-397923af.pth" in message
    assert message.startswith("losses.perceptual: LPIPS (net: vgg) needs the weight file")


def test_a_run_needing_missing_weights_stops_before_training(
    empty_torch_home: Path, write_recipe, tmp_path: Path
):
    recipe = load_recipe(write_recipe(TINY_RECIPE), ["data.size=32", "losses.perceptual=0.5"])
    with pytest.raises(LaserError, match=r"alexnet-owt-7be5be79\.pth"):
        train(recipe, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_cached_backbone_file_is_loaded_into_the_lpips_backbone(empty_torch_home: Path):
    torch.manual_seed(1)
    state = models.squeezenet1_1().state_dict()  # stands in for the ImageNet file
    target = known_weights()["squeezenet1_1"].path
    assert target.parent == cache_dir() == empty_torch_home
    target.parent.mkdir(parents=True)
    torch.save(state, target)
    backbone = build_lpips("squeeze", "pretrained", 3, 32, "test").lpips.net
    torch.testing.assert_close(backbone.slice1[0].weight, state["features.0.weight"])
    torch.testing.assert_close(
        getattr(backbone.slice7, "12").expand3x3.bias, state["features.12.expand3x3.bias"]
    )


def torchvision_file(name: str) -> dict[str, torch.Tensor]:
    """torchvision's ``name`` with random weights, as its cache file holds them: the feature
    layers in full, the classifier's large matrices (which LPIPS never uses) stored as one
    broadcast number each, so the file is kilobytes rather than hundreds of megabytes."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in getattr(models, name)().state_dict().items()}
    torch.manual_seed(1)
    if name == "vgg16":
        features = models.vgg.make_layers(models.vgg.cfgs["D"])
    else:
        features = models.AlexNet().features
    state = {f"features.{k}": v for k, v in features.state_dict().items()}
    return state | {k: torch.zeros(()).expand(s) for k, s in shapes.items() if k not in state}


@pytest.mark.parametrize(("net", "name"), [("alex", "alexnet"), ("vgg", "vgg16")])
def test_the_alexnet_and_vgg_backbones_load_from_a_cache_file(empty_torch_home: Path, net, name):
    state = torchvision_file(name)
    target = known_weights()[name].path
    target.parent.mkdir(parents=True)
    torch.save(state, target)
    backbone = build_lpips(net, "pretrained", 3, 32, "test").lpips.net
    loaded = 0
    for piece in backbone.children():
        for index, layer in piece.named_children():
            for key, tensor in layer.state_dict().items():
                assert torch.equal(tensor, state[f"features.{index}.{key}"]), (index, key)
                loaded += 1
    assert loaded == sum(k.startswith("features.") for k in state)  # every conv, weight and bias


def test_a_cached_file_of_the_wrong_network_is_explained(empty_torch_home: Path):
    target = known_weights()["squeezenet1_1"].path
    target.parent.mkdir(parents=True)
    torch.save({"not": torch.zeros(1)}, target)
    with pytest.raises(LaserError, match="is not torchvision's squeezenet1_1"):
        build_lpips("squeeze", "pretrained", 3, 32, "test")


def test_lpips_refuses_images_smaller_than_its_backbone_takes():
    with pytest.raises(LaserError, match="at least 31 pixels, got 16; use net vgg"):
        build_lpips("alex", "random", 3, 16, "metric lpips")
