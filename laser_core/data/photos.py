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


def _skimage_photo(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data  # files inside the wheel; only its own fetches need the network

        return getattr(skimage.data, name)()

    return load


def _motorcycle() -> np.ndarray:
    import skimage.data

    return skimage.data.stereo_motorcycle()[0]  # the left view; the right one repeats it


def _sklearn_photo(file_name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        # sklearn.datasets.load_sample_image reads these same files, but importing scikit-learn
        # takes seconds; find_spec locates the installed package without importing it.
        spec = importlib.util.find_spec("sklearn")
        assert spec is not None and spec.submodule_search_locations, "scikit-learn is missing"
        folder = Path(spec.submodule_search_locations[0]) / "datasets" / "images"
        with Image.open(folder / file_name) as image:
            return np.asarray(image.convert("RGB"))

    return load


SAMPLE_PHOTOS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage_photo("astronaut"),
    "chelsea": _skimage_photo("chelsea"),
    "coffee": _skimage_photo("coffee"),
    "hubble_deep_field": _skimage_photo("hubble_deep_field"),
    "immunohistochemistry": _skimage_photo("immunohistochemistry"),
    "motorcycle": _motorcycle,
    "rocket": _skimage_photo("rocket"),
    "china": _sklearn_photo("china.jpg"),
    "flower": _sklearn_photo("flower.jpg"),
}
"""Loaders of (height, width, 3) uint8 photographs, by name."""


def sample_photo(name: PhotoName) -> np.ndarray:
    """The photograph ``name`` as (height, width, 3) uint8."""
    return SAMPLE_PHOTOS[name]()
