"""A .lsr file decodes only whole and only with the model and priors that wrote it."""

from __future__ import annotations

import pytest

from laser_core.coding.codec import Codec
from laser_core.coding.priors import build_priors
from laser_core.errors import LaserError
from tests.compression.photos import photo

pytestmark = pytest.mark.slow  # trains tiny models (conftest.py)


@pytest.fixture(scope="module")
def vq_file(trained_run) -> tuple[Codec, bytes]:
    codec = Codec.open(trained_run("vq"))
    data, _ = codec.compress([photo("astronaut", 24, 24), photo("coffee", 16, 40)])
    return codec, data


@pytest.mark.parametrize("where", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_a_flipped_bit_anywhere_is_refused(vq_file, where):
    codec, data = vq_file
    position = min(int(where * len(data)), len(data) - 1)
    position = max(position, 4)  # past the magic: that case is "not a LASER file"
    corrupted = bytearray(data)
    corrupted[position] ^= 0x10
    with pytest.raises(LaserError, match="corrupted"):
        codec.decompress(bytes(corrupted), "bad.lsr")


@pytest.mark.parametrize("keep", [0.3, 0.8, 0.99])
def test_a_truncated_file_is_refused(vq_file, keep):
    codec, data = vq_file
    with pytest.raises(LaserError, match=r"bad\.lsr is (corrupted|not a LASER)"):
        codec.decompress(data[: int(keep * len(data))], "bad.lsr")


def test_another_file_type_is_refused_by_its_magic(vq_file):
    codec, _ = vq_file
    with pytest.raises(LaserError, match=r"photo\.png is not a LASER compressed file"):
        codec.decompress(b"\x89PNG\r\n\x1a\n" + bytes(100), "photo.png")


def test_a_file_from_another_model_is_refused(vq_file, trained_run):
    _, data = vq_file
    other = Codec.open(trained_run("rq"))
    with pytest.raises(LaserError, match="was compressed by another model"):
        other.decompress(data, "vq.lsr")


def test_a_file_coded_under_other_priors_is_refused(trained_run):
    codec = Codec.open(trained_run("gaussian"))
    data, _ = codec.compress([photo("rocket", 16, 16)])
    rebuilt = build_priors(codec.run, codec.priors.model_id, bits=4)
    try:
        with pytest.raises(LaserError, match="coded under other priors"):
            Codec(codec.run, rebuilt).decompress(data, "old.lsr")
    finally:
        build_priors(codec.run, codec.priors.model_id)  # the default priors, for other tests


def test_priors_of_other_weights_are_refused(trained_run, tmp_path):
    run_dir = trained_run("vq")
    copy = tmp_path / "run"
    copy.mkdir()
    for name in ("recipe.yaml", "model.safetensors", "priors.safetensors"):
        (copy / name).write_bytes((run_dir / name).read_bytes())
    Codec.open(copy)  # a copied run directory keeps its identity
    weights = bytearray((copy / "model.safetensors").read_bytes())
    weights[-1] ^= 0x01  # the last byte of the last tensor: the weights differ
    (copy / "model.safetensors").write_bytes(bytes(weights))
    with pytest.raises(LaserError, match="counted for another model"):
        Codec.open(copy)
