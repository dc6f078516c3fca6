"""fsq (one index of 75 grid points, through a projection) and lfq (6 bits per position) go
through export, entropy coding and `laser rd` unchanged, as any bottleneck does."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from laser_core.cli.main import main
from laser_core.coding.codec import Codec
from laser_core.data.images import from_pixels, read_pixels, to_pixels
from laser_core.downstream.export.store import open_export
from tests.compression.reference import model_reconstruction
from tests.compression.test_commands import write_photos

pytestmark = pytest.mark.slow  # trains tiny models (conftest.py)

DEPTH = {"fsq": 1, "lfq": 6}


@pytest.mark.parametrize("name", ["fsq", "lfq"])
def test_export_stores_codes_that_decode_exactly_and_verify_agrees(name, trained_run, tmp_path):
    out = tmp_path / "export"
    assert main(["export", str(trained_run(name)), "--out", str(out), "--verify"]) == 0
    exported = open_export(out)
    indices = exported.load(("indices",))["indices"]
    assert indices.shape == (8, 8, 8, DEPTH[name])  # 8 val patches of 16 px, 8x8 latents
    spec = exported.metadata["code_spec"]["alphabet_sizes"]
    assert spec == ([75] if name == "fsq" else [2] * 6)
    assert ((indices >= 0) & (indices < torch.tensor(spec))).all()
    verify = json.loads((out / "verify" / "verify.json").read_text())
    assert verify["codes"]["max_difference"] < 1e-5


@pytest.mark.parametrize("name", ["fsq", "lfq"])
def test_compress_then_decompress_reconstructs_what_the_model_does(name, trained_run, tmp_path):
    run = trained_run(name)
    images = write_photos(tmp_path / "photos")
    lsr, out = tmp_path / "two.lsr", tmp_path / "out.png"
    assert main(["compress", str(run), *map(str, images), "-o", str(lsr)]) == 0
    assert main(["decompress", str(run), str(lsr), "-o", str(out)]) == 0
    codec = Codec.open(run)
    for index, image in enumerate(images):
        expected = to_pixels(model_reconstruction(codec, from_pixels(read_pixels(image, 3))))
        assert np.array_equal(read_pixels(tmp_path / f"out-{index}.png", 3), expected)


def test_rd_measures_fsq_and_lfq_beside_jpeg(trained_run, tmp_path):
    photos = tmp_path / "photos"
    write_photos(photos, size=(32, 32))
    out = tmp_path / "rd"
    runs = [str(trained_run("fsq")), str(trained_run("lfq"))]
    assert main(["rd", *runs, "--images", str(photos), "-o", str(out)]) == 0
    with open(out / "rd.csv") as stream:
        laser = [row for row in csv.DictReader(stream) if row["bpp_nominal"]]
    assert len(laser) == 4  # two runs x two images
    # 8x8 latents per 16x16 tile: 64 positions of log2(75) or 6 bits over 256 pixels
    nominal = {round(float(row["bpp_nominal"]), 3) for row in laser}
    assert nominal == {round(64 * np.log2(75) / 256, 3), round(64 * 6 / 256, 3)}
