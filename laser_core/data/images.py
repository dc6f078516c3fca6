"""Any image file's pixels as the 8-bit RGB or grayscale every LASER component expects.

Decoders hand back what a file holds: 16-bit grayscale (PNG, TIFF) as integers up to 65535,
palettes, alpha channels, CMYK, an EXIF orientation tag that says how to turn the picture.
PIL's own ``convert`` clips 16-bit values at 255 (a mid-grey 30000 becomes white), so integer
and float modes are scaled here by their bit depth before the conversion.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

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
