"""LPIPS through the ``lpips`` package: its linear heads ship with it, and the backbone's
ImageNet weights come from torch's cache (see :mod:`laser_core.assembly.weights`), never the
network.

``backbone: random`` keeps the heads but leaves the backbone randomly initialised, so the real
code path runs where the weights cannot be had (tests); its numbers are not LPIPS, and building
one says so loudly.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from laser_core.assembly import weights
from laser_core.errors import LaserError
from laser_core.recipes.model import BackboneWeights, LpipsNet

log = logging.getLogger(__name__)

BACKBONE_WEIGHTS = {"alex": "alexnet", "vgg": "vgg16", "squeeze": "squeezenet1_1"}
"""Key in :func:`laser_core.assembly.weights.known_weights` of each net's torchvision backbone."""

MIN_IMAGE_SIZE = {"alex": 31, "vgg": 16, "squeeze": 17}
"""Smallest image side each backbone accepts (measured): below it a feature map vanishes."""


class LPIPS(nn.Module):
    """Perceptual distance of image pairs (B, C, H, W) in [-1, 1] -> (B,), in fp32.

    ``backbone`` is the cached torchvision file to load, or None to leave it random. Frozen
    and always in eval mode (the heads carry dropout); gray images are repeated to RGB.
    """

    def __init__(self, net: LpipsNet, backbone: Path | None):
        super().__init__()
        import lpips

        # Build the random parts from a fixed seed, apart from the training's random stream.
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            torch.manual_seed(0)
            warnings.simplefilter("ignore")  # torchvision's notice about `pretrained=`
            self.lpips = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
        if backbone is not None:
            _load_backbone(self.lpips.net, net, backbone)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPS:
        return super().train(False)

    def forward(self, images: torch.Tensor, reconstructions: torch.Tensor) -> torch.Tensor:
        a, b = images.float(), reconstructions.float()
        if a.shape[1] == 1:
            a, b = a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1)
        with torch.autocast(a.device.type, enabled=False):
            return self.lpips(a, b).flatten()


def build_lpips(
    net: LpipsNet, backbone: BackboneWeights, image_channels: int, image_size: int, owner: str
) -> LPIPS:
    """Check the images fit ``net`` and the weights are cached, then build; ``owner`` names
    what asked for it (a recipe key), for messages."""
    if image_channels not in (1, 3):
        raise LaserError(f"{owner}: LPIPS needs RGB or gray images, got {image_channels} channels")
    if image_size < MIN_IMAGE_SIZE[net]:
        fits = [n for n, size in MIN_IMAGE_SIZE.items() if size <= image_size]
        advice = f"use net {' or '.join(fits)}" if fits else "use larger images"
        raise LaserError(
            f"{owner}: LPIPS net '{net}' needs images of at least {MIN_IMAGE_SIZE[net]} pixels, "
            f"got {image_size}; {advice}"
        )
    if backbone == "pretrained":
        try:
            return LPIPS(net, weights.require(BACKBONE_WEIGHTS[net]))
        except LaserError as error:
            raise LaserError(f"{owner}: {error}") from None
    log.warning(
        "%s: LPIPS '%s' with a RANDOMLY INITIALISED backbone (backbone: random): its values "
        "are not LPIPS and are only fit for tests",
        owner,
        net,
    )
    return LPIPS(net, None)


def _load_backbone(features: nn.Module, net: LpipsNet, path: Path) -> None:
    """Load torchvision's ImageNet weights from ``path`` into lpips' slices of ``features``."""
    from torchvision import models

    with torch.random.fork_rng(devices=[]):
        reference = getattr(models, BACKBONE_WEIGHTS[net])()
    try:
        reference.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (RuntimeError, ValueError, OSError) as error:
        raise LaserError(
            f"{path} is not torchvision's {BACKBONE_WEIGHTS[net]} ({error}); replace it with "
            f"`laser weights import FILE`"
        ) from None
    # lpips slices reuse torchvision's layer indices as child names: slice2 holds '2', '3', '4'.
    for piece in features.children():
        for index, layer in piece.named_children():
            layer.load_state_dict(reference.features[int(index)].state_dict())
