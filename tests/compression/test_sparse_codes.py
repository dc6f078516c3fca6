"""The coding path of sparse codes (atom ids with coefficients), on codes built here: quantized
coefficients per rank, supports coded only where a coefficient survives quantization."""

from __future__ import annotations

import pytest
import torch

from laser_core.coding.entropy import EntropyCoder
from laser_core.coding.priors import count_symbols, parse_priors
from laser_core.coding.quantize import ValueQuantizer
from laser_core.coding.rates import nominal_bits
from laser_core.coding.symbols import quantized, to_symbols
from laser_core.plugin.contracts import Codes

ATOMS, SPARSITY, MODEL = 64, 4, bytes(16)


def sparse_codes(positions: int, seed: int) -> Codes:
    """OMP-like codes (positions, SPARSITY): distinct atoms drawn from a skewed distribution,
    coefficients shrinking with rank, the last rank unused (index 0, value 0) at half of them."""
    generator = torch.Generator().manual_seed(seed)
    popularity = torch.linspace(3, 0, ATOMS).exp()
    indices = torch.multinomial(popularity.expand(positions, ATOMS), SPARSITY, generator=generator)
    values = torch.randn(positions, SPARSITY, generator=generator) / torch.arange(1, SPARSITY + 1)
    unused = torch.rand(positions, generator=generator) < 0.5
    indices[unused, -1], values[unused, -1] = 0, 0.0
    return Codes(indices, values)


@pytest.fixture(scope="module")
def coder() -> EntropyCoder:
    training = sparse_codes(20000, seed=0)
    quantizer = ValueQuantizer.fit(training.values, bits=6)
    data = count_symbols(to_symbols(training, quantizer), [ATOMS] * SPARSITY, quantizer, 1, MODEL)
    return EntropyCoder(parse_priors(data, "test priors", MODEL))


def test_sparse_codes_round_trip_through_the_range_coder(coder):
    symbols = to_symbols(sparse_codes(4096, seed=1), coder.priors.quantizer)
    decoded = coder.decode(coder.encode(symbols), 4096)
    assert torch.equal(decoded.indices, symbols.indices)
    assert torch.equal(decoded.values, symbols.values)


def test_a_coefficient_quantized_to_zero_drops_its_atom(coder):
    quantizer = coder.priors.quantizer
    codes = sparse_codes(1000, seed=2)
    codes.values[:10, 0] = 0.1 * quantizer.steps[0]  # rounds to the level 0
    decoded = quantized(codes, quantizer)
    indices, values = decoded.indices, decoded.values
    assert (values[:10, 0] == 0).all() and (indices[:10, 0] == 0).all()
    unused = codes.values[:, -1] == 0
    assert (indices[unused, -1] == 0).all() and (values[unused, -1] == 0).all()


def test_quantization_error_is_at_most_half_a_step_below_the_clip(coder):
    quantizer = coder.priors.quantizer
    values = sparse_codes(4096, seed=3).values
    error = (quantizer.dequantize(quantizer.symbols(values)) - values).abs()
    inside = values.abs() < quantizer.steps * (2 ** (quantizer.bits - 1) - 1)
    assert (error[inside] <= quantizer.steps.expand_as(values)[inside] / 2 + 1e-6).all()


def test_coded_bits_approach_the_cross_entropy_and_beat_the_nominal_rate(coder):
    symbols = to_symbols(sparse_codes(8192, seed=4), coder.priors.quantizer)
    actual = 8 * len(coder.encode(symbols))
    cross_entropy = coder.cross_entropy_bits(symbols)
    assert cross_entropy < actual < 1.01 * cross_entropy
    nominal = nominal_bits(symbols, [ATOMS] * SPARSITY, coder.priors.quantizer)
    assert nominal == 8192 * SPARSITY * (6 + 6)  # log2(64) bits per atom id, 6 per coefficient
    assert actual < 0.8 * nominal
