"""Compression round trips: decompress(compress(x)) is the model's own reconstruction of x,
bit for bit, and the file costs what the priors say it should."""

from __future__ import annotations

import pytest
import torch

from laser_core.coding import container
from laser_core.coding.codec import Codec
from laser_core.coding.finetune import finetune_decoder
from laser_core.coding.priors import build_priors
from tests.compression.photos import photo
from tests.compression.reference import (
    file_codes,
    image_of,
    model_codes,
    model_reconstruction,
    tiles_of,
)

pytestmark = pytest.mark.slow  # trains tiny models (conftest.py)


@pytest.mark.parametrize("run", ["vq", "rq", "hierarchical", "omp", "gaussian", "fsq", "lfq"])
def test_a_file_holds_the_models_codes_and_decodes_to_the_models_reconstruction(trained_run, run):
    codec = Codec.open(trained_run(run))
    image = photo("astronaut", 37, 50)  # 3 x 4 tiles of the 16-pixel training side, padded
    data, _ = codec.compress([image])
    (decoded,) = codec.decompress(data, "test.lsr")

    (found,) = file_codes(codec, data)
    expected = model_codes(codec, image).map(lambda t: t.reshape(-1, t.shape[-1]))
    for name in ("indices", "values"):
        assert (getattr(found, name) is None) == (getattr(expected, name) is None), name
    assert found.indices is None or torch.equal(found.indices, expected.indices)
    assert found.values is None or torch.equal(found.values, expected.values)
    assert torch.equal(decoded, model_reconstruction(codec, image))


def test_several_images_of_different_sizes_share_one_file(trained_run):
    codec = Codec.open(trained_run("vq"))
    images = [photo("coffee", 20, 30), photo("rocket", 33, 17)]
    data, rates = codec.compress(images)
    decoded = codec.decompress(data, "test.lsr")
    assert [d.shape for d in decoded] == [i.shape for i in images]
    for image, result in zip(images, decoded, strict=True):
        assert torch.equal(result, model_reconstruction(codec, image))
    assert rates.pixels == 20 * 30 + 33 * 17 and rates.actual_bits == 8 * len(data)


def test_gaussian_means_cost_eight_bits_each_before_entropy_coding(trained_run):
    codec = Codec.open(trained_run("gaussian"))
    _, rates = codec.compress([photo("chelsea", 32, 32)])
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
def test_a_file_is_its_header_and_the_cross_entropy_within_0_2_percent(trained_run, bottleneck):
    """What docs/compression.md states: within 0.2% of the cross-entropy plus a header."""
    codec = Codec.open(trained_run(bottleneck))
    data, rates = codec.compress([photo("coffee", 256, 256)])  # 128 x 128 positions
    assert rates.actual_bits == 8 * len(data)
    header = 4 + 2 + 16 + 16 + 1 + 2 + 5 * 4 + 4  # container.py's layout for one image: 65
    payload_bits = rates.actual_bits - 8 * header
    assert len(container.unpack(data, "test.lsr").images[0].payload) == payload_bits // 8
    ideal = rates.cross_entropy_bits
    assert ideal <= payload_bits <= 1.002 * ideal + 64, (payload_bits, ideal)


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
    assert torch.equal(decoded, model_reconstruction(tuned, images[0]))
