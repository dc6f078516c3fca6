"""Real photographs for the compression tests: crops of the ones photo-patches ships."""

from __future__ import annotations

import numpy as np
import torch

from laser_core import SAMPLE_PHOTOS as PHOTOS
from laser_core.data.images import from_pixels


def photo_pixels(name: str, height: int, width: int) -> np.ndarray:
    """The top-left crop (height, width, 3) uint8 of photograph ``name``."""
    return np.ascontiguousarray(PHOTOS[name]()[:height, :width])


def photo(name: str, height: int, width: int) -> torch.Tensor:
    """The same crop as a model takes it: (3, height, width) in [-1, 1]."""
    return from_pixels(photo_pixels(name, height, width))
