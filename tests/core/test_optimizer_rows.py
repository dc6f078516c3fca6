"""The trainer forgets Adam's moments for the rows a bottleneck revived, given as indices or
as a boolean mask (which bottlenecks build without a host sync)."""

from __future__ import annotations

import torch

from laser_core.training.train import _reset_optimizer_rows


def test_revived_rows_lose_their_moments_by_index_or_by_mask():
    for rows in (torch.tensor([1, 3]), torch.tensor([False, True, False, True, False])):
        weight = torch.nn.Parameter(torch.randn(5, 4))
        optimizer = torch.optim.AdamW([weight])
        weight.grad = torch.randn(5, 4)
        optimizer.step()
        before = {k: v.clone() for k, v in optimizer.state[weight].items()}
        _reset_optimizer_rows(optimizer, [(weight, rows)])
        for name in ("exp_avg", "exp_avg_sq"):
            moment = optimizer.state[weight][name]
            assert (moment[[1, 3]] == 0).all()
            assert torch.equal(moment[[0, 2, 4]], before[name][[0, 2, 4]])
