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

GRAYSCALE_MODES = frozenset({"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"})
"""Pillow modes of single-channel images."""

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


def read_codable_pixels(path: Path, channels: int) -> np.ndarray:
    """:func:`read_pixels` for a codec, refusing a file it could only code by changing what
    the file holds (colour to luma or back, 16 bits to 8): a decoded image is then the given
    one up to the codec's loss, never silently a different picture."""
    try:
        with Image.open(path) as image:
            mode = image.mode
            sixteen_bit_rgb = any(";16" in str(tile.args) for tile in image.tile)
            deep = mode in _FULL_SCALE or mode == "F" or sixteen_bit_rgb
    except (OSError, UnidentifiedImageError) as error:
        raise LaserError(f"cannot read image {path}: {error}") from None
    if deep:
        raise LaserError(
            f"{path} holds more than 8 bits per sample (mode {mode}); LASER codecs code 8-bit "
            "images and would drop the low bits: convert it to 8 bits first"
        )
    grayscale = mode in GRAYSCALE_MODES
    if grayscale and channels == 3:
        raise LaserError(
            f"{path} is a grayscale image (mode {mode}) and this run codes RGB images: convert "
            "it to RGB to code it as one, or use a run trained on grayscale (data.channels: 1)"
        )
    if not grayscale and channels == 1:
        raise LaserError(
            f"{path} is a colour image (mode {mode}) and this run codes grayscale images: "
            "convert it to grayscale first, or use a run trained on colour (data.channels: 3)"
        )
    return read_pixels(path, channels)


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
