"""digits: scikit-learn's 1,797 labelled 8x8 handwritten digits, resized; no download.

Small enough to train on in seconds and labelled, so it serves the tasks (latent
classification) and tests that need classes.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch.nn import functional as F

from laser_core import BuildContext, DatasetConfig, DataSplits, FiniteFloat, PositiveInt, Seed

from .common import InMemoryImages, split_indices

DIGIT_MAX = 16.0  # the pixels of sklearn's digits are counts from 0 to 16


class DigitsConfig(DatasetConfig):
    size: PositiveInt = Field(16, ge=2, description="side in pixels the 8x8 digits are resized to")
    val_fraction: FiniteFloat = Field(0.2, gt=0, lt=1, description="share of each class held out")
    seed: Seed = Field(0, description="seeds the train/val split")


def build(config: DigitsConfig, context: BuildContext) -> DataSplits:
    """scikit-learn's labelled 8x8 digits, resized; no download.

    Images (1, size, size) with labels 0-9, split by class so both splits hold every digit."""
    from sklearn.datasets import load_digits  # imported here: scikit-learn takes seconds

    digits = load_digits()
    images = torch.from_numpy(digits.images).float().unsqueeze(1) / DIGIT_MAX  # (N, 1, 8, 8)
    images = F.interpolate(images, size=(config.size, config.size), mode="bilinear", antialias=True)
    pixels = images.clamp(0, 1).mul(255).round().to(torch.uint8)
    labels = torch.from_numpy(digits.target)
    train, val = split_indices(digits.target, config.val_fraction, config.seed)
    return DataSplits(
        InMemoryImages(pixels[train], labels[train]),
        InMemoryImages(pixels[val], labels[val]),
        image_channels=1,
        image_size=config.size,
        num_classes=10,
    )
