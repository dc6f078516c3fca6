"""photo-patches: random crops of the colour photographs scikit-image and scikit-learn ship.

No download and no files of one's own needed, so it is the default dataset of quickstarts and
tests. Train and val come from different photographs, so validation measures how a model does
on pictures it has never seen, not on overlapping crops of the ones it trained on.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from PIL import Image
from pydantic import Field, field_validator

from laser_core import (
    SAMPLE_PHOTOS,
    BuildContext,
    DatasetConfig,
    DataSplits,
    PhotoName,
    PositiveInt,
    Seed,
    image_pixels,
    sample_photo,
)

from .common import InMemoryImages

SMALLEST_SIDE = 300  # chelsea is 300 x 451 pixels; no crop can be larger


class PhotoPatchesConfig(DatasetConfig):
    size: PositiveInt = Field(32, ge=2, le=SMALLEST_SIDE, description="crop side in pixels")
    channels: Literal[1, 3] = Field(3, description="3 for colour, 1 for luma (grayscale)")
    train_patches: PositiveInt = Field(4096, description="crops drawn from the train photos")
    val_patches: PositiveInt = Field(512, description="crops drawn from the val photos")
    val_photos: list[PhotoName] = Field(
        default_factory=lambda: ["chelsea", "china"],
        description="photographs held out for validation; all others are for training",
    )
    seed: Seed = Field(0, description="seeds the crop positions; the same seed, the same crops")

    @field_validator("val_photos")
    @classmethod
    def _leaves_photos_for_both_splits(cls, photos: list[str]) -> list[str]:
        if not photos:
            raise ValueError("name at least one photograph for validation")
        if len(set(photos)) == len(SAMPLE_PHOTOS):
            raise ValueError("leave at least one photograph for training")
        return photos


def build(config: PhotoPatchesConfig, context: BuildContext) -> DataSplits:
    """Random crops of the photographs scikit-image and scikit-learn ship; no download.

    Draw every crop now, from ``config.seed`` alone, so that each process of a multi-process
    run and a resumed run hold identical datasets."""
    val_names = sorted(set(config.val_photos))
    train_names = [name for name in SAMPLE_PHOTOS if name not in val_names]
    splits = []
    for stream, (names, count) in enumerate(
        ((train_names, config.train_patches), (val_names, config.val_patches))
    ):
        photos = [
            image_pixels(Image.fromarray(sample_photo(name)), config.channels) for name in names
        ]
        # One random stream per split: changing val_patches leaves the train crops alone.
        rng = np.random.default_rng((config.seed, stream))
        splits.append(InMemoryImages(random_crops(photos, count, config.size, rng)))
    return DataSplits(splits[0], splits[1], config.channels, config.size)


def random_crops(
    photos: list[np.ndarray], count: int, size: int, rng: np.random.Generator
) -> torch.Tensor:
    """``count`` crops (count, C, size, size) uint8 from photos (H, W[, C]), each from a
    photograph chosen uniformly, so a large photograph does not dominate the split."""
    heights = np.array([photo.shape[0] for photo in photos])
    widths = np.array([photo.shape[1] for photo in photos])
    sources = rng.integers(len(photos), size=count)
    tops = rng.integers(heights[sources] - size + 1)
    lefts = rng.integers(widths[sources] - size + 1)
    crops = np.stack(
        [
            photos[s][y : y + size, x : x + size]
            for s, y, x in zip(sources, tops, lefts, strict=True)
        ]
    )
    if crops.ndim == 3:  # grayscale: (count, size, size)
        crops = crops[..., None]
    return torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous()
