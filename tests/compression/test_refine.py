"""Encoder-side refinement (`laser compress --refine`, `laser rd --refine`): it fits each image's
latents to the run's own objective, its files decode as any other, and what cannot refine
says so."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from laser_core.cli.main import main
from laser_core.coding import container
from laser_core.coding.opening import open_codec
from laser_core.data.images import from_pixels, read_pixels, to_pixels
from laser_core.runs.load import load_run
from tests.compression.codec_runs import train_codec
from tests.compression.photos import photo_pixels

pytestmark = pytest.mark.slow  # trains tiny models

RATE_WEIGHT = 0.01
"""The tiny models' losses.rate (codec_runs.py)."""


@pytest.fixture(scope="module")
def trained_codec(tmp_path_factory):
    """trained_codec(name) -> a tiny codec_runs.py model trained for 40 steps: the 3 steps of
    codec_run leave a decoder that barely depends on its latents, nothing to refine for."""
    runs = {}

    def get(name: str):
        if name not in runs:
            runs[name] = train_codec(tmp_path_factory.mktemp(name), name, steps=40)
        return runs[name]

    return get


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A real photograph's 40x56 crop, a size no stride divides, as a PNG."""
    path = tmp_path_factory.mktemp("photo") / "coffee.png"
    Image.fromarray(photo_pixels("coffee", 40, 56)).save(path)
    return path


def objective(original: np.ndarray, decoded: np.ndarray, payload_bytes: int) -> float:
    """What the runs trained for, from a file's payload and its decoded pixels: MSE on [-1, 1]
    pixels + rate weight x bits per pixel."""
    mse = float(((from_pixels(decoded) - from_pixels(original)) ** 2).mean())
    return mse + RATE_WEIGHT * 8 * payload_bytes / (original.shape[0] * original.shape[1])


@pytest.mark.parametrize("name", ["factorized", "hyperprior"])
def test_refined_files_cost_less_and_decode_as_any_other(trained_codec, photo, tmp_path, name):
    run = trained_codec(name)
    assert load_run(run).recipe.losses.rate == RATE_WEIGHT
    original = read_pixels(photo, 3)
    costs = {}
    for refine in (0, 30):
        lsr, png = tmp_path / f"{refine}.lsr", tmp_path / f"{refine}.png"
        command = ["compress", str(run), str(photo), "-o", str(lsr), "--refine", str(refine)]
        assert main(command) == 0
        assert main(["decompress", str(run), str(lsr), "-o", str(png)]) == 0
        decoded = np.asarray(Image.open(png))
        payload = container.unpack(lsr.read_bytes(), lsr.name).images[0].payload
        costs[refine] = objective(original, decoded, len(payload))
    assert costs[30] < 0.9 * costs[0]
    measured, _ = open_codec(run, refine=30).measure(from_pixels(original))
    assert np.array_equal(decoded, to_pixels(measured))  # one image, one file: seeded


@pytest.mark.parametrize("name", ["factorized", "hyperprior"])
def test_relaxed_codes_sharpen_into_the_codes_and_their_bits(trained_codec, photo, name):
    """At a low temperature the relaxation is the rounding the file codes, and its bits are
    the model's own eval likelihood of those codes."""
    model = load_run(trained_codec(name)).model
    image = from_pixels(read_pixels(photo, 3))[None, :, :32, :48]
    with torch.no_grad():
        latents = model.encoder(image)
        soft, bits = model.bottleneck.relaxed(latents, 1e-3)
        eval_bits = model.bottleneck(latents).bits
    assert torch.equal(soft, torch.round(latents))
    assert bits.shape == (1,)
    assert float(bits[0]) == pytest.approx(float(eval_bits[0]), rel=1e-5)


def test_rd_adds_the_refined_codec_beside_the_run(trained_codec, photo, tmp_path):
    run = trained_codec("factorized")
    assert (
        main(["rd", str(run), "--images", str(photo.parent), "--refine", "5", "-o", str(tmp_path)])
        == 0
    )
    with (tmp_path / "rd.csv").open() as file:
        codecs = [row["codec"] for row in csv.DictReader(file)]
    assert codecs.count("run") == codecs.count("run refined") == 1


def test_rd_names_the_runs_it_cannot_refine(codec_run, photo, tmp_path, caplog):
    run = codec_run("fsq-rate")
    args = ["rd", str(run), "--images", str(photo.parent), "--refine", "5", "-o", str(tmp_path)]
    assert main(args) == 0
    assert f"rd: {run} is not refined: --refine fits the latents of a run" in caplog.text


def test_what_cannot_refine_says_so(codec_run, trained_run, photo, tmp_path, capsys):
    out = str(tmp_path / "x.lsr")
    assert (
        main(["compress", str(codec_run("factorized")), str(photo), "-o", out, "--refine", "-1"])
        == 1
    )
    assert "--refine takes a number of steps, 0 (none) or more (got -1)" in capsys.readouterr().err
    assert (
        main(["compress", str(codec_run("fsq-rate")), str(photo), "-o", out, "--refine", "5"]) == 1
    )
    assert "bottleneck 'fsq-rate' cannot refine its latents" in capsys.readouterr().err
    assert main(["compress", str(trained_run("vq")), str(photo), "-o", out, "--refine", "5"]) == 1
    assert "codes tiles under counted priors; --refine fits" in capsys.readouterr().err
    assert not (tmp_path / "x.lsr").exists()
