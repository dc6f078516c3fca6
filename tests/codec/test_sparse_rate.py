"""sparse-rate: OMP codes with a learnt quantization step, ids and STOP under learnt
categoricals and coefficients under learnt densities; checked on hand-made dictionaries."""

from __future__ import annotations

import math

import pytest
import torch

from laser_core import BuildContext, LaserError
from laser_core.coding.table_coder import TableCoder
from laser_core.plugin.registry import Provider, Registry
from laser_core.testing import check_component
from laser_plugins.codec import sparse_rate
from laser_plugins.codec.sparse_rate import SparseRateBottleneck, SparseRateConfig

DIM, ATOMS = 4, 6


def build(step: float = 0.5, **params) -> SparseRateBottleneck:
    """A bottleneck whose first DIM atoms are the unit vectors, quantizing by ``step``."""
    bottleneck = SparseRateBottleneck(
        SparseRateConfig(**{"atoms": ATOMS, "sparsity": 2, **params}),
        BuildContext(latent_dim=DIM),
    )
    with torch.no_grad():
        bottleneck.dictionary[:DIM] = torch.eye(DIM)
        bottleneck.dictionary[DIM:] = torch.ones(ATOMS - DIM, DIM)
        bottleneck.dictionary[DIM:, 0] = -1
        bottleneck.log_step.fill_(math.log(step))
    return bottleneck.eval()


def latents(vectors: list[list[float]]) -> torch.Tensor:
    """Vectors (positions, dim) as latents (1, dim, 1, positions)."""
    return torch.tensor(vectors).t().reshape(1, len(vectors[0]), 1, len(vectors))


def test_sparse_rate_conforms_to_the_bottleneck_contract():
    registry = Registry()
    registry.add_plugin(sparse_rate, Provider("sparse-rate", "laser", "test"))
    params = {"atoms": 16, "sparsity": 3}
    check_component("bottlenecks", "sparse-rate", params, BuildContext(latent_dim=8), registry)


def test_coefficients_round_by_the_step_and_a_zero_drops_its_atom():
    # position 0: 1.3 on atom 0 rounds to 3 steps of 0.5, -0.2 on atom 3 rounds to 0 and goes;
    # position 1: atoms 2 and 1, kept in increasing id; position 2: nothing survives rounding
    z = latents([[1.3, 0.0, 0.0, -0.2], [0.0, -0.8, 2.1, 0.0], [0.1, 0.0, 0.0, 0.0]])
    bottleneck = build()
    output = bottleneck(z)
    stop = ATOMS
    assert output.codes.indices[0, 0].tolist() == [[0, stop], [1, 2], [stop, stop]]
    assert output.codes.values[0, 0].tolist() == [[1.5, 0.0], [-1.0, 2.0], [0.0, 0.0]]
    expected = [[1.5, 0.0, 0.0, 0.0], [0.0, -1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    assert torch.equal(output.quantized, latents(expected))
    stages = bottleneck.stage_symbols(z)
    # ids slot by slot, then each kept coefficient as q - 1 where positive, q where negative
    assert [s[0, 0, 0].tolist() for s in stages[:2]] == [[0, 1, stop], [stop, 2, stop]]
    assert stages[2][0, :, 0].tolist() == [[2, -2, 0], [0, 3, 0]]
    assert torch.equal(bottleneck.dequantize(stages), output.quantized)
    assert torch.equal(bottleneck.decode(bottleneck.encode(z)), output.quantized)


def test_the_learnt_step_receives_the_gradient_of_the_quantization_error():
    bottleneck = build().train()
    z = latents([[1.3, 0.0, 0.0, 0.0]])
    bottleneck(z).quantized.sum().backward()
    # 1.3 / 0.5 = 2.6 rounds to 3: d(step x round(z / step)) / d step = 3 - 2.6, times the step
    assert bottleneck.log_step.grad.item() == pytest.approx(0.4 * 0.5, abs=1e-5)


def test_a_zero_latent_costs_only_its_stop_symbol():
    bottleneck = build()
    z = torch.zeros(1, DIM, 4, 5)
    output = bottleneck(z)
    stop_bits = math.log2(ATOMS + 1)  # untrained: STOP is one of atoms + 1 equal symbols
    assert output.bits.item() == pytest.approx(20 * stop_bits, rel=1e-6)
    coder = TableCoder(bottleneck, bottleneck.coding_tables())
    stages, rows = coder.clamp(bottleneck.stage_symbols(z), (4, 5))
    _, coded_bits = coder.encode(stages, rows)
    # the later slots and the coefficients are certain: 1e-5 bits for all 20 x 3 of them
    assert coded_bits == pytest.approx(20 * stop_bits, abs=1e-4)
    bottleneck.first_id_counts[ATOMS] = 1e5  # trained, it learns that flat regions stop at once
    assert bottleneck(z).bits.item() < 20 * 1e-3


def test_eval_bits_are_what_the_range_coder_spends():
    torch.manual_seed(0)
    bottleneck = build(step=0.2)
    bottleneck.next_id_counts.uniform_(0, 20)
    bottleneck.first_id_counts.uniform_(0, 20)
    z = torch.randn(1, DIM, 6, 7)
    coder = TableCoder(bottleneck, bottleneck.coding_tables())
    stages, rows = coder.clamp(bottleneck.stage_symbols(z), (6, 7))
    payload, coded_bits = coder.encode(stages, rows)
    assert coded_bits == pytest.approx(bottleneck(z).bits.item(), rel=1e-3)
    decoded = coder.decode(payload, (6, 7))
    assert all(torch.equal(a, b) for a, b in zip(decoded, stages, strict=True))
    assert torch.equal(bottleneck.dequantize(decoded), bottleneck(z).quantized)


def test_the_rate_reaches_latents_dictionary_step_and_models():
    bottleneck = build().train()
    z = torch.randn(2, DIM, 3, 3, requires_grad=True)
    bottleneck(z).bits.sum().backward()
    for name, grad in [
        ("latents", z.grad),
        ("dictionary", bottleneck.dictionary.grad),
        ("step", bottleneck.log_step.grad),
        ("densities", bottleneck.coefficient_density.biases[0].grad),
    ]:
        assert grad is not None and grad.abs().sum() > 0, name


def test_the_id_model_counts_the_coded_ids_with_decay():
    bottleneck = build().train()
    z = latents([[1.3, 0.0, 0.0, -0.9], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]])
    bottleneck(z)
    bottleneck(z)  # two micro-batches before one optimizer step
    bottleneck.after_optimizer_step()
    stop = ATOMS
    first = {0: 2.0, 2: 2.0, stop: 2.0}  # atoms 0 and 3 / nothing / atom 2
    assert bottleneck.first_id_counts.tolist() == [first.get(i, 0.0) for i in range(ATOMS + 1)]
    # slot 1 is coded where slot 0 kept an atom: 3 after 0, STOP after 2
    assert torch.nonzero(bottleneck.next_id_counts[0]).tolist() == [[0, 3], [2, stop]]
    bottleneck.after_optimizer_step()  # nothing pending: nothing decays
    bottleneck.eval()(z)
    bottleneck.train().after_optimizer_step()  # eval never counts
    bottleneck(z)
    bottleneck.after_optimizer_step()
    assert bottleneck.first_id_counts[0].item() == pytest.approx(2 * 0.995 + 1)


def test_more_atoms_than_the_latent_has_dimensions_are_refused():
    with pytest.raises(LaserError, match="sparsity=5 exceeds latent_dim=4"):
        build(sparsity=5)
