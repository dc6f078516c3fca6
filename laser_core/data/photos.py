"""Colour photographs that ship inside scikit-image and scikit-learn: data that needs no
download, for the photo-patches dataset, quickstarts, tests and ``laser rd``'s default images."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

PhotoName = Literal[
    "astronaut",
    "chelsea",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "motorcycle",
    "rocket",
    "china",
    "flower",
]
"""Every photograph on offer. Left out: skimage's retina (its black surround makes many crops
blank), cat (chelsea again), the grayscale and synthetic images, and those skimage fetches."""


def _packaged_photo(package: str, file_name: str) -> Callable[[], np.ndarray]:
    """A loader of ``file_name``, relative to the installed ``package``, as RGB uint8.

    The files are read with Pillow, as skimage.data and sklearn.datasets read them (the same
    pixels), without importing either package: skimage.data imports skimage.io, and with it
    imageio and scipy, and scikit-learn takes seconds; that was most of ``laser validate``'s
    time beyond importing torch. find_spec locates a package without importing it."""

    def load() -> np.ndarray:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, f"{package} is missing"
        with Image.open(Path(spec.submodule_search_locations[0]) / file_name) as image:
            return np.array(image.convert("RGB"))

    return load


SAMPLE_PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _packaged_photo("skimage", "data/astronaut.png"),
    "chelsea": _packaged_photo("skimage", "data/chelsea.png"),
    "coffee": _packaged_photo("skimage", "data/coffee.png"),
    "hubble_deep_field": _packaged_photo("skimage", "data/hubble_deep_field.jpg"),
    "immunohistochemistry": _packaged_photo("skimage", "data/ihc.png"),
    # the left view of skimage.data.stereo_motorcycle(); the right one repeats it
    "motorcycle": _packaged_photo("skimage", "data/motorcycle_left.png"),
    "rocket": _packaged_photo("skimage", "data/rocket.jpg"),
    "china": _packaged_photo("sklearn", "datasets/images/china.jpg"),
    "flower": _packaged_photo("sklearn", "datasets/images/flower.jpg"),
}
"""Loaders of (height, width, 3) uint8 photographs, by name."""


def sample_photo(name: PhotoName) -> np.ndarray:
    """The photograph ``name`` as (height, width, 3) uint8."""
    return SAMPLE_PHOTOS[name]()
