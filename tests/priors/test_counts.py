"""The counts prior: the baseline every learned prior is measured against."""

from __future__ import annotations

import math

import torch

from laser_core import BuildContext, SymbolSpec
from laser_core.assembly.build import build_component
from laser_core.testing import PROBE_SYMBOLS, check_component, check_prior

VQ = SymbolSpec(grid=(1, 2), kinds=("index",), slots=(0,), alphabet_sizes=(4,))


def _counts(spec: SymbolSpec):
    return build_component("priors", {"name": "counts"}, BuildContext(symbols=spec))


def test_counts_prior_conforms():
    check_component("priors", "counts")


def test_counts_log_prob_is_the_entropy_counted_by_hand():
    prior = _counts(VQ)
    tokens = torch.tensor([[0, 0], [0, 1], [2, 0]])  # symbol counts 4, 1, 1, 0
    prior.fit(tokens, None)
    smoothed = [4.5, 1.5, 1.5, 0.5]
    p = {s: c / sum(smoothed) for s, c in enumerate(smoothed)}
    expected = [2 * math.log2(p[0]), math.log2(p[0] * p[1]), math.log2(p[2] * p[0])]
    assert prior.log_prob(tokens).tolist() == torch.tensor(expected).float().tolist()


def test_counts_never_count_or_charge_an_index_whose_sparse_value_is_zero():
    prior = _counts(PROBE_SYMBOLS)  # fields: value (zero symbol 2), its index, another index
    tokens = torch.tensor([[2, 0, 1] * 6, [3, 4, 0] * 6])
    prior.fit(tokens, None)
    assert prior.counts[1].tolist() == [0, 0, 0, 0, 6]  # only the second code's indices
    log_probs = prior.log_probs(tokens[:1], None)[0] / math.log(2)
    value_bits, other_index_bits = log_probs[0, 2], log_probs[2, 1]  # the index costs nothing
    assert torch.allclose(prior.log_prob(tokens[:1]), 6 * (value_bits + other_index_bits))


def test_a_third_party_prior_runs_the_conformance_kit():
    check_prior(_counts(PROBE_SYMBOLS), lambda: _counts(PROBE_SYMBOLS))
