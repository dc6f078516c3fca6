"""`laser rd --images DIR` on whatever a user's folder holds: images of any size are measured
as they are, and an image rd cannot measure is one clear message naming it, never a traceback."""

from __future__ import annotations

import csv
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from laser_core.cli.main import main
from tests.compression.photos import photo_pixels


def rd(folder, tmp_path) -> int:
    return main(["rd", "--images", str(folder), "-o", str(tmp_path / "rd")])


def png_16_bit_rgb(pixels: np.ndarray) -> bytes:
    """A PNG of 16 bits per channel (Pillow writes none): (H, W, 3) uint16."""
    height, width = pixels.shape[:2]
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + (chunk(b"IEND", b""))
    )


def test_images_of_any_size_are_measured_uncropped_without_runs(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(photo_pixels("coffee", 37, 53)).save(folder / "odd.png")
    deep = photo_pixels("rocket", 24, 19).astype(np.uint16) * 257  # 8-bit values at 16 bits
    (folder / "deep.png").write_bytes(png_16_bit_rgb(deep))
    (folder / "notes.txt").write_text("not an image, left out")
    assert rd(folder, tmp_path) == 0
    with open(tmp_path / "rd" / "rd.csv") as stream:
        rows = list(csv.DictReader(stream))
    sizes = {row["image"]: (int(row["height"]), int(row["width"])) for row in rows}
    assert sizes == {"odd.png": (37, 53), "deep.png": (24, 19)}
    # the 16-bit file's samples read as the 8-bit photo they were made from: WebP at q=90
    # codes that photo, not a clipped white square
    webp = next(r for r in rows if r["image"] == "deep.png" and r["setting"] == "q=90")
    assert float(webp["psnr"]) > 30


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda f: Image.new("RGB", (1, 1)).save(f / "dot.png"), "dot.png is 1x1 pixels"),
        (lambda f: Image.new("RGB", (10000, 1)).save(f / "line.png"), "line.png is 1x10000"),
        (
            lambda f: Image.fromarray(np.full((20, 20), 30000, np.uint16)).save(f / "grey16.png"),
            "grey16.png is a grayscale image (mode I;16)",
        ),
        (lambda f: Image.new("L", (20, 20)).save(f / "grey.png"), "grey.png is a grayscale"),
        (lambda f: (f / "fake.png").write_text("not a PNG"), "cannot read image"),
        (lambda f: (f / "notes.txt").write_text("text"), "holds no images"),
        (lambda f: None, "holds no images"),
    ],
    ids=["1x1", "10000x1", "16-bit-grey", "grey", "not-an-image", "no-image-files", "empty"],
)
def test_an_image_rd_cannot_measure_is_one_clear_message(tmp_path, capsys, make, message):
    folder = tmp_path / "photos"
    folder.mkdir()
    make(folder)
    assert rd(folder, tmp_path) == 1
    error = capsys.readouterr().err
    assert message in error
    assert "Traceback" not in error


def test_a_missing_folder_is_named(tmp_path, capsys):
    assert rd(tmp_path / "nowhere", tmp_path) == 1
    assert "nowhere: no such folder" in capsys.readouterr().err
