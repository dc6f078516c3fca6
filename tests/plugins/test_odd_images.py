"""Image files as people have them: 16-bit PNG and TIFF, an EXIF orientation, palettes, alpha,
CMYK, and images smaller than the configured size, each read as what the picture shows."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from laser_core import LaserError, build_component, image_pixels
from laser_core.data.images import read_pixels

GREY_16 = 30000  # of 65535: 116.7 of 255


def _signed(value_8bit: float) -> float:
    return value_8bit / 127.5 - 1


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_greyscale_is_scaled_by_its_depth_not_clipped_to_white(tmp_path, suffix):
    path = tmp_path / f"grey{suffix}"
    Image.fromarray(np.array([[GREY_16, 65535], [0, 257]], dtype=np.uint16)).save(path)
    assert read_pixels(path, 1)[..., 0].tolist() == [[117, 255], [0, 1]]
    assert read_pixels(path, 3)[0, 0].tolist() == [117, 117, 117]


def test_exif_orientation_is_applied():
    stored = np.zeros((2, 4), dtype=np.uint8)
    stored[:, 2:] = 255  # left half black, right half white, as stored
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    image.info["exif"] = exif.tobytes()
    image = _reopened(image, "JPEG")
    upright = image_pixels(image, 1)[..., 0]
    assert upright.shape == (4, 2)
    expected = np.rot90(stored, k=-1)  # clockwise: the white half ends up at the bottom
    assert np.abs(upright.astype(int) - expected).max() < 40  # JPEG's ringing, no more


def _reopened(image: Image.Image, format: str) -> Image.Image:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format=format, exif=image.info.get("exif", b""))
    buffer.seek(0)
    return Image.open(buffer)


def test_palette_alpha_and_cmyk_images_become_the_colours_they_show():
    palette = Image.new("P", (2, 2))
    palette.putpalette([255, 0, 0] + [0, 0, 255] * 255)
    assert image_pixels(palette, 3)[0, 0].tolist() == [255, 0, 0]
    grey_alpha = Image.new("LA", (2, 2), (100, 255))
    assert image_pixels(grey_alpha, 3)[0, 0].tolist() == [100, 100, 100]
    cyan_free = Image.new("CMYK", (2, 2), (0, 255, 255, 0))  # no cyan, full magenta and yellow
    assert image_pixels(_reopened(cyan_free, "TIFF"), 3)[0, 0].tolist() == [255, 0, 0]


@pytest.fixture
def mixed_sizes(tmp_path):
    """A folder of 40-pixel images and two of 8 pixels, for size 32."""
    rng = np.random.default_rng(0)
    for index in range(6):
        side = 8 if index < 2 else 40
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"image-{index}.png")
    grey = np.full((40, 40), GREY_16, dtype=np.uint16)
    Image.fromarray(grey).save(tmp_path / "grey-16-bit.png")
    return tmp_path


def _folder(path, **keys):
    block = {"name": "image-folder", "path": str(path), "size": 32, "val_fraction": 0.2, **keys}
    return build_component("datasets", block)


def test_smaller_images_are_upscaled_with_a_count_by_default(mixed_sizes, caplog):
    with caplog.at_level(logging.WARNING):
        splits = _folder(mixed_sizes)
    assert len(splits.train) + len(splits.val) == 7
    assert len(splits.upscaled) == 2 and not splits.too_small
    assert "upscaled 2 image(s)" in caplog.text


def test_smaller_images_can_be_skipped_and_counted(mixed_sizes, caplog):
    with caplog.at_level(logging.WARNING):
        splits = _folder(mixed_sizes, smaller_images="skip")
    assert len(splits.train) + len(splits.val) == 5
    assert len(splits.too_small) == 2
    assert "skipped 2 image(s)" in caplog.text


def test_smaller_images_can_be_refused(mixed_sizes):
    with pytest.raises(LaserError, match=r"2 image\(s\) .* smaller than size=32"):
        _folder(mixed_sizes, smaller_images="refuse")


def test_a_16_bit_image_in_a_folder_reads_as_mid_grey(mixed_sizes):
    splits = _folder(mixed_sizes, channels=1, smaller_images="skip")
    images = [split[i]["image"] for split in (splits.train, splits.val) for i in range(len(split))]
    flat = [image for image in images if float(image.max() - image.min()) == 0]
    assert len(flat) == 1  # the grey one; the random ones vary
    assert float(flat[0][0, 0, 0]) == pytest.approx(_signed(117), abs=1e-6)
