"""Compression round trips: decompress(compress(x)) is the model's own reconstruction of x,
bit for bit, and the file costs what the priors say it should."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from laser_core.coding.codec import Codec
from laser_core.coding.finetune import finetune_decoder
from laser_core.coding.priors import build_priors
from laser_core.plugin.contracts import Codes
from tests.compression.photos import photo

pytestmark = pytest.mark.slow  # trains tiny models (conftest.py)


def tiles_of(image: torch.Tensor, tile: int) -> tuple[torch.Tensor, int, int]:
    """Tiles (rows * cols, C, tile, tile) of an image padded by edge repetition, rows, cols."""
    rows, cols = -(-image.shape[1] // tile), -(-image.shape[2] // tile)
    padding = (0, cols * tile - image.shape[2], 0, rows * tile - image.shape[1])
    padded = F.pad(image[None], padding, mode="replicate")[0]
    tiles = padded.unfold(1, tile, tile).unfold(2, tile, tile)  # (C, rows, cols, tile, tile)
    return tiles.permute(1, 2, 0, 3, 4).reshape(-1, image.shape[0], tile, tile), rows, cols


def image_of(tiles: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """The padded image (C, rows * tile, cols * tile) that ``tiles`` cover."""
    channels, tile = tiles.shape[1], tiles.shape[2]
    grid = tiles.reshape(rows, cols, channels, tile, tile).permute(2, 0, 3, 1, 4)
    return grid.reshape(channels, rows * tile, cols * tile)


@pytest.mark.parametrize("run", ["vq", "rq", "hierarchical"])
def test_decompressed_image_is_the_models_reconstruction_exactly(trained_run, run):
    codec = Codec.open(trained_run(run))
    image = photo("astronaut", 37, 50)  # 3 x 4 tiles of the 16-pixel training side, padded
    data, _ = codec.compress([image])
    (decoded,) = codec.decompress(data, "test.lsr")

    tiles, rows, cols = tiles_of(image, 16)
    with torch.no_grad():
        reconstruction, output = codec.model(tiles)
    assert torch.equal(decoded, image_of(reconstruction, rows, cols)[:, :37, :50].clamp(-1, 1))
    indices = output.codes.indices
    assert torch.equal(codec.encode(image).symbols.indices, indices.reshape(-1, indices.shape[-1]))


def test_sparse_codes_decode_to_the_models_reconstruction_of_their_quantized_coefficients(
    trained_run,
):
    codec = Codec.open(trained_run("omp"))
    image = photo("astronaut", 24, 30)
    data, _ = codec.compress([image])
    (decoded,) = codec.decompress(data, "test.lsr")

    model, quantizer = codec.model, codec.priors.quantizer
    tiles, rows, cols = tiles_of(image, 16)
    with torch.no_grad():
        codes = model.bottleneck.encode(model.encoder(tiles))
        levels = quantizer.symbols(codes.values)
        kept = levels != quantizer.zero_symbol  # a coefficient quantized to 0 drops its atom
        quantized = Codes(torch.where(kept, codes.indices, 0), quantizer.dequantize(levels))
        reconstruction = model.decoder(model.bottleneck.decode(quantized))
    assert torch.equal(decoded, image_of(reconstruction, rows, cols)[:, :24, :30].clamp(-1, 1))


def test_several_images_of_different_sizes_share_one_file(trained_run):
    codec = Codec.open(trained_run("vq"))
    images = [photo("coffee", 20, 30), photo("rocket", 33, 17)]
    data, rates = codec.compress(images)
    decoded = codec.decompress(data, "test.lsr")
    assert [d.shape for d in decoded] == [i.shape for i in images]
    for image, result in zip(images, decoded, strict=True):
        assert torch.equal(result, codec.reconstruct(codec.encode(image)))
    assert rates.pixels == 20 * 30 + 33 * 17 and rates.actual_bits == 8 * len(data)


def test_gaussian_means_are_quantized_and_decode_exactly(trained_run):
    codec = Codec.open(trained_run("gaussian"))
    image = photo("chelsea", 32, 32)
    data, rates = codec.compress([image])
    (decoded,) = codec.decompress(data, "test.lsr")
    assert torch.equal(decoded, codec.reconstruct(codec.encode(image)))
    assert rates.nominal_bits == 16 * 16 * 4 * 8  # positions x channels x 8 bits by default


def test_more_bits_per_value_come_closer_to_the_unquantized_reconstruction(trained_run):
    codec = Codec.open(trained_run("gaussian"))
    image = photo("chelsea", 32, 32)
    tiles, rows, cols = tiles_of(image, 16)
    with torch.no_grad():
        unquantized = image_of(codec.model(tiles)[0], rows, cols).clamp(-1, 1)
    errors = []
    try:
        for bits in (3, 5, 7):
            quantized = Codec(codec.run, build_priors(codec.run, codec.priors.model_id, bits))
            reconstruction, _ = quantized.measure(image)
            errors.append((reconstruction - unquantized).square().mean().item())
    finally:
        build_priors(codec.run, codec.priors.model_id)  # the default priors, for other tests
    assert errors[0] > errors[1] > errors[2], errors


@pytest.mark.parametrize("bottleneck", ["vq", "rq", "omp"])
def test_actual_bits_are_within_a_few_percent_above_the_cross_entropy(trained_run, bottleneck):
    codec = Codec.open(trained_run(bottleneck))
    _, rates = codec.measure(photo("coffee", 256, 256))  # 128 x 128 positions
    assert rates.cross_entropy_bits < rates.actual_bits < 1.03 * rates.cross_entropy_bits


def test_finetuning_the_decoder_on_quantized_coefficients_lowers_their_distortion(
    trained_run, tmp_path
):
    source = Codec.open(trained_run("omp"))
    coarse = Codec(source.run, build_priors(source.run, source.priors.model_id, bits=3))
    try:
        tuned = finetune_decoder(coarse, tmp_path / "tuned", steps=30)
    finally:
        build_priors(source.run, source.priors.model_id)  # the default priors, for other tests
    assert torch.equal(tuned.priors.quantizer.steps, coarse.priors.quantizer.steps)
    images = torch.stack([source.run.data.train[i]["image"] for i in range(8)])

    def error(codec: Codec) -> float:
        return sum((codec.measure(x)[0] - x).square().mean().item() for x in images)

    assert error(tuned) < 0.9 * error(coarse)
    data, _ = tuned.compress([images[0]])  # the new run directory decodes its own files
    (decoded,) = Codec.open(tmp_path / "tuned").decompress(data, "tuned.lsr")
    assert torch.equal(decoded, tuned.measure(images[0])[0])
