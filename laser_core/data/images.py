"""Image files as the tensors models take, and back: any file's pixels as the 8-bit RGB or
grayscale every LASER component expects, and (C, H, W) float in [-1, 1] to and from them.

Decoders hand back what a file holds: 16-bit grayscale (PNG, TIFF) as integers up to 65535,
palettes, alpha channels, CMYK, an EXIF orientation tag that says how to turn the picture.
PIL's own ``convert`` clips 16-bit values at 255 (a mid-grey 30000 becomes white), so integer
and float modes are scaled here by their bit depth before the conversion.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from laser_core.errors import LaserError
from laser_core.files import atomic_write

MODES = {1: "L", 3: "RGB"}
"""PIL image mode for each supported number of channels."""

_FULL_SCALE = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535}
"""Modes whose values exceed 8 bits, and the value that is white. Pillow opens 16-bit PNG and
TIFF grayscale as ``I;16`` (or ``I`` after some operations), holding 0..65535."""


def image_pixels(image: Image.Image, channels: int) -> np.ndarray:
    """uint8 pixels (height, width, channels) of ``image``, upright as its EXIF tag says and
    scaled from its bit depth; ``channels`` is 3 (RGB) or 1 (luma)."""
    image = ImageOps.exif_transpose(image)
    if image.mode in _FULL_SCALE:
        values = np.asarray(image, dtype=np.float64) * (255.0 / _FULL_SCALE[image.mode])
        eight_bit = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        image = Image.fromarray(eight_bit, mode="L")
    elif image.mode in ("P", "PA") and "transparency" in image.info:
        image = image.convert("RGBA")  # so that transparent entries do not become palette noise
    pixels = np.asarray(image.convert(MODES[channels]), dtype=np.uint8)
    return pixels.reshape(*pixels.shape[:2], channels)


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
    from its bit depth (:func:`image_pixels`)."""
    try:
        with Image.open(path) as image:
            return image_pixels(image, channels)
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise LaserError(f"cannot read image {path}: {error}") from None


def write_png(pixels: np.ndarray, path: Path) -> None:
    """uint8 pixels (H, W, C) as a PNG, written atomically."""
    image = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels)
    atomic_write(path, lambda temporary: image.save(temporary, format="PNG"))
