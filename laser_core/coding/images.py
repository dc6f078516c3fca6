"""Image files as the tensors models take, and back: (C, H, W) float in [-1, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from laser_core.data.images import image_pixels
from laser_core.errors import LaserError
from laser_core.rundir.layout import atomic_write

MODES = {1: "L", 3: "RGB"}


def from_pixels(pixels: np.ndarray) -> torch.Tensor:
    """uint8 pixels (H, W, C) -> float32 (C, H, W) in [-1, 1]."""
    return torch.tensor(pixels).permute(2, 0, 1).float().div(127.5).sub(1.0)


def to_pixels(image: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> uint8 pixels (H, W, C), rounded to nearest."""
    pixels = image.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)
    return pixels.permute(1, 2, 0).numpy()


def tile(images: torch.Tensor, columns: int, pad_value: float) -> torch.Tensor:
    """Images (n, C, H, W) as one grid (C, H', W'), ``columns`` to a row, each framed by one
    pixel of ``pad_value``: torchvision's make_grid, whose import costs a run seconds."""
    count, channels, height, width = images.shape
    columns = min(columns, count)
    rows = -(-count // columns)
    grid = images.new_full(
        (channels, rows * (height + 1) + 1, columns * (width + 1) + 1), pad_value
    )
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = row * (height + 1) + 1, column * (width + 1) + 1
        grid[:, top : top + height, left : left + width] = image
    return grid


def read_pixels(path: Path, channels: int) -> np.ndarray:
    """uint8 pixels (H, W, channels) of an image file, RGB or grayscale, upright and scaled
    from its bit depth (:func:`laser_core.data.images.image_pixels`)."""
    try:
        with Image.open(path) as image:
            return image_pixels(image, channels)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise LaserError(f"cannot read image {path}: {error}") from None


def write_png(pixels: np.ndarray, path: Path) -> None:
    """uint8 pixels (H, W, C) as a PNG, written atomically."""
    image = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    atomic_write(path, lambda temporary: image.save(temporary, format="PNG"))
