"""Image datasets held by HF ``datasets``, shared by the image-folder and hf plugins.

Rows stay on disk (memory-mapped Arrow) and are decoded when read, so a dataset may be far
larger than memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from PIL import Image, ImageOps
from pydantic import Field
from torch.utils.data import Dataset

from laser_core import (
    DatasetConfig,
    DataSplits,
    FiniteFloat,
    LaserError,
    PositiveInt,
    Seed,
    did_you_mean,
    image_pixels,
)

from .common import split_indices, to_signed_unit

if TYPE_CHECKING:
    import datasets


class ResizedImagesConfig(DatasetConfig):
    """Keys of datasets whose images come in any size and are brought to one."""

    size: PositiveInt = Field(
        32, description="side in pixels after resizing the short side and center-cropping"
    )
    channels: Literal[1, 3] = Field(3, description="3 for RGB, 1 for grayscale")
    val_fraction: FiniteFloat = Field(
        0.1, gt=0, lt=1, description="share of each class held out when there is no val split"
    )
    seed: Seed = Field(0, description="seeds the train/val split and the order of val")


def fit_image(image: Image.Image, size: int, channels: int) -> torch.Tensor:
    """Any PIL image as float32 (channels, size, size) in [-1, 1]: upright and scaled from its
    bit depth (``laser_core.image_pixels``), the short side resized to ``size`` and the long
    side center-cropped, so nothing is stretched."""
    pixels = image_pixels(image, channels)
    upright = Image.fromarray(pixels[..., 0] if channels == 1 else pixels)
    image = ImageOps.fit(upright, (size, size), Image.Resampling.BICUBIC)
    pixels = torch.from_numpy(np.array(image, dtype=np.uint8)).reshape(size, size, channels)
    return to_signed_unit(pixels.permute(2, 0, 1))


class HFImages(Dataset):
    """Rows of an HF dataset as {"image": float32 (C, size, size) in [-1, 1], "label": int
    (when labelled), "index": row position in this split}."""

    def __init__(
        self,
        rows: datasets.Dataset,
        image_column: str,
        label_column: str | None,
        size: int,
        channels: int,
    ):
        columns = [image_column] if label_column is None else [image_column, label_column]
        self.rows = rows.select_columns(columns)  # decode nothing that is not served
        self.image_column, self.label_column = image_column, label_column
        self.size, self.channels = size, channels

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        row = self.rows[index]
        item: dict[str, torch.Tensor | int] = {
            "image": fit_image(row[self.image_column], self.size, self.channels),
            "index": index,
        }
        if self.label_column is not None:
            item["label"] = int(row[self.label_column])
        return item


def hf_splits(
    train: datasets.Dataset,
    val: datasets.Dataset | None,
    image_column: str,
    label_column: str | None,
    config: ResizedImagesConfig,
    source: str,
) -> DataSplits:
    """Check the columns, split ``train`` by ``config.val_fraction`` (stratified by label)
    when there is no ``val``, and wrap both. ``source`` names the data in errors."""
    import datasets

    for name, rows in (("train", train), ("val", val)):
        if rows is not None and len(rows) == 0:
            raise LaserError(f"{source}: the {name} split holds no images")
    _check_column(train, image_column, source, "image_column")
    if not isinstance(train.features[image_column], datasets.Image):
        raise LaserError(
            f"{source}: column '{image_column}' holds {train.features[image_column]}, not "
            "images; set image_column to the column of images"
        )
    num_classes = None
    if label_column is not None:
        _check_column(train, label_column, source, "label_column")
        num_classes = _num_classes(train, val, label_column, source)
    if val is None:
        labels = np.zeros(len(train)) if label_column is None else np.asarray(train[label_column])
        train_rows, val_rows = split_indices(labels, config.val_fraction, config.seed)
        train, val = train.select(train_rows), train.select(val_rows)
    else:
        # Evaluation may read only the first batches; they must not all be one class.
        val = val.select(np.random.default_rng(config.seed).permutation(len(val)))
    return DataSplits(
        *(
            HFImages(r, image_column, label_column, config.size, config.channels)
            for r in (train, val)
        ),
        image_channels=config.channels,
        image_size=config.size,
        num_classes=num_classes,
    )


def _check_column(rows: datasets.Dataset, column: str, source: str, key: str) -> None:
    if column not in rows.column_names:
        raise LaserError(
            f"{source}: no column '{column}' (the {key}){did_you_mean(column, rows.column_names)}"
            f"; columns: {', '.join(rows.column_names)}"
        )


def _num_classes(
    train: datasets.Dataset, val: datasets.Dataset | None, column: str, source: str
) -> int:
    """Classes of a ClassLabel column, or 1 + the largest id of an integer column."""
    import datasets

    feature = train.features[column]
    if isinstance(feature, datasets.ClassLabel):
        return feature.num_classes
    if isinstance(feature, datasets.Value) and feature.dtype.startswith(("int", "uint")):
        return 1 + max(int(np.max(rows[column])) for rows in (train, val) if rows is not None)
    raise LaserError(
        f"{source}: label column '{column}' holds {feature}; labels must be class ids "
        "(ClassLabel or integers)"
    )
