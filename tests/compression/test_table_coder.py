"""The table coder on hand-made tables: what a long training can leave in them."""

from __future__ import annotations

import torch

from laser_core import BuildContext
from laser_core.coding.table_coder import TableCoder
from laser_core.ops.frequencies import TOTAL, CodingTable
from plugins.codec.factorized_prior import FactorizedBottleneck, FactorizedConfig


def test_a_channel_of_one_symbol_costs_no_bits_and_decodes():
    """A channel whose learnt density collapsed onto one integer (an unused side-information
    channel after thousands of steps) has a one-symbol row, which constriction cannot model."""
    bottleneck = FactorizedBottleneck(FactorizedConfig(), BuildContext(latent_dim=2))
    frequencies = torch.tensor([[TOTAL, 0, 0], [TOTAL // 2, TOTAL // 4, TOTAL // 4]])
    table = CodingTable(frequencies, offsets=torch.tensor([3, -1]), sizes=torch.tensor([1, 3]))
    coder = TableCoder(bottleneck, [table])
    symbols = torch.tensor([[[[3, 3, 3], [3, 3, 3]], [[-1, 0, 1], [1, 1, -1]]]])
    stages, rows = coder.clamp([symbols], (2, 3))
    payload, bits = coder.encode(stages, rows)
    assert bits == 6 * 0 + 2 * 1 + 4 * 2  # -log2 of 1, 1/2 (for -1) and 1/4 (for 0 and 1)
    assert torch.equal(coder.decode(payload, (2, 3))[0], symbols)
