"""Rates three ways, and the codebook counted apart from them."""

from __future__ import annotations

import pytest

from laser_core.coding.codec import Codec
from tests.compression.photos import photo

pytestmark = pytest.mark.slow  # trains tiny models (conftest.py)


@pytest.mark.parametrize(
    ("bottleneck", "nominal_per_position", "codebook_bytes"),
    [
        ("vq", 4, 16 * 4 * 4),  # log2(16) bits; 16 codes x 4 dims x fp32, EMA sums left out
        ("rq", 3 * 4, 3 * 16 * 4 * 4),  # three levels, each its own codebook
        ("gaussian", 4 * 8, 0),  # 4 means at 8 bits; decoding reads no stored tensor
        ("omp", 3 * (4 + 8), 16 * 4 * 4),  # 3 atom ids and coefficients; 16 atoms of 4 dims
    ],
)
def test_nominal_rate_and_codebook_size(
    trained_run, bottleneck, nominal_per_position, codebook_bytes
):
    codec = Codec.open(trained_run(bottleneck))
    _, rates = codec.measure(photo("rocket", 32, 48))  # 2 x 3 tiles of 8 x 8 positions
    assert rates.nominal_bits == 16 * 24 * nominal_per_position
    assert rates.bpp()["bpp_nominal"] == rates.nominal_bits / (32 * 48)
    assert codec.codebook_bytes == codebook_bytes
