"""Pretrained weight files, read from torch's hub cache and never downloaded by LASER.

LPIPS backbones (torchvision's AlexNet, VGG16, SqueezeNet 1.1) and the Inception network of
FID/KID live in ``$TORCH_HOME/hub/checkpoints``, the folder torchvision itself caches them in.
On a machine without internet, fetch a file elsewhere and ``laser weights import FILE`` checks
it against the sha256 prefix in its standard name (torchvision's convention) and copies it in.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import torch.hub

from laser_core.errors import LaserError
from laser_core.files import atomic_write
from laser_core.rundir.manifest import sha256


@dataclass(frozen=True)
class WeightFile:
    """One known file: its cache name carries the sha256 prefix, e.g. alexnet-owt-7be5be79.pth."""

    url: str
    used_by: str

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def sha256_prefix(self) -> str:
        found = torch.hub.HASH_REGEX.search(self.name)
        assert found, f"{self.name} carries no hash"
        return found.group(1)

    @property
    def path(self) -> Path:
        return cache_dir() / self.name


def cache_dir() -> Path:
    """Where torchvision keeps downloaded weights: $TORCH_HOME/hub/checkpoints."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def known_weights() -> dict[str, WeightFile]:
    """Every file LASER can use, by key; names and hashes come from the libraries' own
    sources (torchvision's weight enums, torch-fidelity's Inception URL)."""
    from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
    from torchvision import models

    return {
        "alexnet": WeightFile(models.AlexNet_Weights.IMAGENET1K_V1.url, "LPIPS (net: alex)"),
        "vgg16": WeightFile(models.VGG16_Weights.IMAGENET1K_V1.url, "LPIPS (net: vgg)"),
        "squeezenet1_1": WeightFile(
            models.SqueezeNet1_1_Weights.IMAGENET1K_V1.url, "LPIPS (net: squeeze)"
        ),
        "inception": WeightFile(URL_INCEPTION_V3, "FID and KID (features: inception)"),
    }


def require(key: str) -> Path:
    """The cached file for ``key``, or an error saying which file to put where."""
    weights = known_weights()[key]
    if weights.path.is_file():
        return weights.path
    raise LaserError(
        f"{weights.used_by} needs the weight file {weights.name}, which is not in "
        f"{cache_dir()} (set by $TORCH_HOME). LASER downloads nothing: fetch {weights.url} "
        f"on a machine with internet, then run `laser weights import {weights.name}` here "
        f"(or copy it to {weights.path})."
    )


def import_file(source: Path, known: dict[str, WeightFile] | None = None) -> Path:
    """Copy ``source`` into the cache under its standard name, whatever it is called now,
    once its sha256 matches one of the ``known`` files (default: :func:`known_weights`)."""
    known = known_weights() if known is None else known
    if not source.is_file():
        raise LaserError(f"{source} is not a file")
    digest = sha256(source)
    for weights in known.values():
        if digest.startswith(weights.sha256_prefix):
            atomic_write(weights.path, lambda temporary: shutil.copyfile(source, temporary))
            return weights.path
    listing = "\n".join(f"  {w.name} (sha256 {w.sha256_prefix}...)" for w in known.values())
    raise LaserError(
        f"{source} has sha256 {digest}, which matches none of the weight files LASER uses; "
        f"a partial download or another release has another hash. Known files:\n{listing}"
    )
