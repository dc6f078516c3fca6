"""Learned codecs that train for rate and code whole images: `factorized`, `hyperprior`,
`sparse-rate`, `vq-rate` and `fsq-rate` runs, their stored coding tables and their `.lsr`
files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from laser_core.cli.main import main
from laser_core.coding import container
from laser_core.coding.entropy import Categorical, payload_decoder
from laser_core.coding.opening import open_codec
from laser_core.data.images import from_pixels, read_pixels, to_pixels
from laser_core.ops.frequencies import TOTAL
from laser_core.rundir.layout import RunDir
from laser_core.rundir.resume import WHOLE_IMAGES, recorded_coding
from tests.compression.codec_runs import BOTTLENECKS, RECIPE
from tests.compression.photos import photo_pixels
from tests.helpers import run_laser

pytestmark = pytest.mark.slow  # trains tiny models


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """A real photograph's 96x128 crop and a 37x53 one, sizes no stride divides, as PNGs."""
    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for name, size in (("coffee", (96, 128)), ("rocket", (37, 53))):
        paths.append(folder / f"{name}.png")
        Image.fromarray(photo_pixels(name, *size)).save(paths[-1])
    return paths


def likelihood_bits(run_dir, pixels: np.ndarray) -> float:
    """The model's own -log2 likelihood of an image's rounded codes (eval), padded as coded."""
    codec = open_codec(run_dir)
    image = from_pixels(pixels)
    height, width = image.shape[1:]
    padding = (0, -width % codec.downsampling, 0, -height % codec.downsampling)
    padded = torch.nn.functional.pad(image[None], padding, mode="replicate")
    with torch.no_grad():
        return float(codec.model.bottleneck(codec.model.encoder(padded)).bits.sum())


@pytest.mark.parametrize("name", BOTTLENECKS)
def test_file_bytes_are_the_likelihood_bits_plus_the_header(codec_run, photos, tmp_path, name):
    run = codec_run(name)
    assert recorded_coding(run) == WHOLE_IMAGES
    lsr = tmp_path / "photo.lsr"
    assert main(["compress", str(run), str(photos[0]), "-o", str(lsr)]) == 0
    payload = container.unpack(lsr.read_bytes(), "photo.lsr").images[0].payload
    header = lsr.stat().st_size - len(payload)
    bits = likelihood_bits(run, read_pixels(photos[0], 3))
    # the hyperprior codes each latent at the next tabulated scale: up to 0.3% more
    assert 8 * len(payload) == pytest.approx(bits, rel=0.01, abs=64)
    assert header == 4 + 2 + 16 + 16 + 1 + 2 + 20 + 4


@pytest.mark.parametrize("name", BOTTLENECKS)
def test_odd_sizes_decode_to_what_compression_measured(codec_run, photos, tmp_path, name):
    run = codec_run(name)
    lsr, out = tmp_path / "both.lsr", tmp_path / "out.png"
    assert main(["compress", str(run), *map(str, photos), "-o", str(lsr)]) == 0
    assert main(["decompress", str(run), str(lsr), "-o", str(out)]) == 0
    codec = open_codec(run)
    for number, path in enumerate(photos):
        decoded = np.asarray(Image.open(tmp_path / f"out-{number}.png"))
        measured, _ = codec.measure(from_pixels(read_pixels(path, 3)))
        assert decoded.shape == read_pixels(path, 3).shape
        assert np.array_equal(decoded, to_pixels(measured))


def test_another_process_decodes_the_same_pixels(codec_run, photos, tmp_path):
    run = codec_run("hyperprior")
    lsr = tmp_path / "photo.lsr"
    assert main(["compress", str(run), str(photos[1]), "-o", str(lsr)]) == 0
    assert main(["decompress", str(run), str(lsr), "-o", str(tmp_path / "here.png")]) == 0
    there = run_laser("decompress", str(run), str(lsr), "-o", str(tmp_path / "there.png"))
    assert there.returncode == 0, there.stderr
    here = np.asarray(Image.open(tmp_path / "here.png"))
    assert np.array_equal(here, np.asarray(Image.open(tmp_path / "there.png")))


def test_constriction_alone_decodes_a_factorized_file_from_the_stored_tables(
    codec_run, photos, tmp_path
):
    """An independent decoder: the container's payload, the safetensors tables and
    constriction, channel after channel, none of LASER's coder."""
    run = codec_run("factorized")
    lsr = tmp_path / "photo.lsr"
    assert main(["compress", str(run), str(photos[1]), "-o", str(lsr)]) == 0
    image = container.unpack(lsr.read_bytes(), "photo.lsr").images[0]
    tables = load_file(RunDir(run).coding_tables)
    decoder = payload_decoder(image.payload)
    channels = tables["0.sizes"].shape[0]
    decoded = np.zeros((channels, *image.grid), dtype=np.int64)
    for channel in range(channels):
        size = int(tables["0.sizes"][channel])
        frequencies = tables["0.frequencies"][channel, :size].double().numpy() / TOTAL
        symbols = decoder.decode(Categorical(frequencies, perfect=False), decoded[0].size)
        decoded[channel] = symbols.reshape(image.grid) + int(tables["0.offsets"][channel])
    codec = open_codec(run)
    expected = codec.encode(from_pixels(read_pixels(photos[1], 3))).stages[0][0]
    assert np.array_equal(decoded, expected.numpy())


def test_damaged_or_foreign_files_are_refused(codec_run, photos, tmp_path, capsys):
    factorized, hyperprior = codec_run("factorized"), codec_run("hyperprior")
    lsr = tmp_path / "photo.lsr"
    assert main(["compress", str(factorized), str(photos[1]), "-o", str(lsr)]) == 0
    capsys.readouterr()
    assert main(["decompress", str(hyperprior), str(lsr), "-o", str(tmp_path / "x.png")]) == 1
    assert "compressed by another model" in capsys.readouterr().err
    truncated = tmp_path / "truncated.lsr"
    truncated.write_bytes(lsr.read_bytes()[:-9])
    assert main(["decompress", str(factorized), str(truncated), "-o", str(tmp_path / "x.png")]) == 1
    assert "corrupted or truncated" in capsys.readouterr().err


def test_a_sparse_file_with_a_changed_byte_is_refused(codec_run, photos, tmp_path, capsys):
    run = codec_run("sparse-rate")
    lsr = tmp_path / "photo.lsr"
    assert main(["compress", str(run), str(photos[0]), "-o", str(lsr)]) == 0
    data = bytearray(lsr.read_bytes())
    data[len(data) // 2] ^= 0x10
    damaged = tmp_path / "damaged.lsr"
    damaged.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["decompress", str(run), str(damaged), "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert "corrupted or truncated" in err and "Traceback" not in err


def test_a_run_without_its_coding_tables_says_how_to_get_them(codec_run, photos, tmp_path, capsys):
    run = tmp_path / "copy"
    shutil.copytree(codec_run("factorized"), run)
    (run / RunDir.CODING_TABLES).unlink()
    (run / RunDir.MANIFEST).unlink()
    assert main(["compress", str(run), str(photos[1]), "-o", str(tmp_path / "x.lsr")]) == 1
    err = capsys.readouterr().err
    assert "coding_tables.safetensors" in err and "Traceback" not in err


def test_negative_rate_is_refused_at_its_line(write_recipe, capsys):
    path = write_recipe(RECIPE.format(bottleneck="{name: factorized}").replace("0.01", "-0.5"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:7: losses.rate: Input should be greater than or equal to 0" in err


def test_rate_without_an_entropy_model_is_refused(write_recipe, capsys):
    path = write_recipe(RECIPE.format(bottleneck="{name: vq, codebook_size: 16}"))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:4: bottleneck: losses.rate=0.01 weighs the codes' bits" in err
    assert "bottleneck 'vq' has none; use one that has (installed: " in err
    assert all(f"'{name}'" in err for name in BOTTLENECKS)


def test_eval_reports_bits_per_pixel(codec_run, capsys):
    assert main(["eval", str(codec_run("factorized"))]) == 0
    assert "bpp" in capsys.readouterr().out


def test_a_resumed_codec_run_equals_the_uninterrupted_one(write_recipe, tmp_path):
    """The uniform noise of rate training is drawn from torch's RNG, which checkpoints keep:
    resumed from step 2 of 4, the weights and the coding tables are the same bytes."""
    recipe = write_recipe(
        RECIPE.format(bottleneck="{name: factorized}")
        .replace("log_every: 3,", "log_every: 1, checkpoint_every: 2,")
        .replace("steps: 3,", "steps: 4,")
    )
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    assert main(["run", str(recipe), "--run-dir", str(whole)]) == 0
    shutil.copytree(whole, resumed)
    shutil.rmtree(resumed / "checkpoints" / "step-0000004")
    assert main(["run", "--resume", str(resumed)]) == 0
    for name in (RunDir.WEIGHTS, RunDir.CODING_TABLES):
        assert (resumed / name).read_bytes() == (whole / name).read_bytes(), name


def test_tile_options_are_refused_for_a_whole_image_run(codec_run, photos, tmp_path, capsys):
    run = codec_run("factorized")
    args = ["compress", str(run), str(photos[1]), "-o", str(tmp_path / "x.lsr")]
    assert main([*args, "--prior", "transformer"]) == 1
    assert "codes whole images under its own entropy model" in capsys.readouterr().err
    assert main(["finetune-quantized", str(run), "-o", str(tmp_path / "tuned")]) == 1
    assert "no value quantizer to fine-tune for" in capsys.readouterr().err


def sixteen_bit_rgb_png(path, pixels: np.ndarray) -> None:
    """A 16-bit RGB PNG (Pillow writes RGB at 8 bits only), chunk by chunk."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    height, width = pixels.shape[:2]
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_images_a_run_would_code_as_another_picture_are_refused(
    codec_run, photos, tmp_path, capsys
):
    pixels = photo_pixels("coffee", 24, 32)
    gray, gray16, rgb16 = tmp_path / "gray.png", tmp_path / "gray16.png", tmp_path / "rgb16.png"
    Image.fromarray(pixels[..., 0]).save(gray)
    Image.fromarray(pixels[..., 0].astype(np.uint16) * 257).save(gray16)
    sixteen_bit_rgb_png(rgb16, pixels.astype(np.uint16) * 257)
    assert Image.open(rgb16).size == (32, 24)  # a valid PNG Pillow reads
    run = codec_run("factorized")
    for path, words in (
        (gray, "grayscale image (mode L)"),
        (gray16, "more than 8 bits"),
        (rgb16, "more than 8 bits"),
    ):
        out = tmp_path / f"{path.stem}.lsr"
        assert main(["compress", str(run), str(path), "-o", str(out)]) == 1
        err = capsys.readouterr().err
        assert words in err and str(path) in err and "Traceback" not in err
        assert not out.exists()
    assert main(["compress", str(run), str(photos[0]), "-o", str(tmp_path / "ok.lsr")]) == 0
    assert "coding tables" in capsys.readouterr().out  # not "codebook": it has none
