"""A training step of each built-in bottleneck (forward, backward, the update after the
optimizer step) makes the host wait on the device nowhere, counted on the CPU by
``tests.sync_counter``; only the first step, which initialises codebooks and dictionaries from
the data, reads the initialisation flags back (and picks non-zero signals by a mask). K-SVD's
Gauss-Seidel sweep reads the width of its table back once per sweep, by design (see
laser_core.ops.ksvd)."""

from __future__ import annotations

import pytest
import torch

from laser_core.plugin.contracts import BuildContext
from laser_core.plugin.registry import default_registry
from tests.sync_counter import SyncCounter

ITEM = "item/bool/int/float of a tensor"
BOTTLENECKS = [
    ("vq", {"codebook_size": 16, "dead_code_after": 1}, {}),
    ("vq", {"codebook_size": 16, "update": "gradient", "dead_code_after": 1}, {}),
    ("rq", {"codebook_size": 16, "levels": 3, "quantize_dropout": 0.5}, {}),
    ("gumbel", {"codebook_size": 16}, {}),
    ("gaussian", {}, {}),
    ("omp", {"atoms": 24, "sparsity": 3, "dead_atom_after": 1}, {}),
    ("omp", {"atoms": 24, "sparsity": 3, "update": "online", "dead_atom_after": 1}, {}),
    ("ksvd", {"atoms": 24, "sparsity": 3, "dead_atom_after": 1}, {ITEM: 2}),
    ("vq-rate", {"codebook_size": 16, "group_dim": 4}, {}),
    ("fsq-rate", {"levels": 7}, {}),
]


def step(bottleneck) -> None:
    z = torch.randn(4, 8, 4, 4, requires_grad=True)
    out = bottleneck(z)
    (out.quantized.square().sum() + out.loss).backward()
    bottleneck.after_optimizer_step()


@pytest.mark.parametrize(("name", "options", "expected"), BOTTLENECKS)
def test_training_steps_after_the_first_never_wait_on_the_device(name, options, expected):
    component = default_registry().get("bottlenecks", name)
    torch.manual_seed(0)
    bottleneck = component.factory(component.config(**options), BuildContext(latent_dim=8))
    bottleneck.train()
    with SyncCounter() as first:
        step(bottleneck)
    initialisation = {"item/bool/int/float of a tensor", "indexing with a boolean mask"}
    assert set(first.counts) <= initialisation | set(expected), first.report()
    with SyncCounter() as later:
        step(bottleneck)
        step(bottleneck)
    assert dict(later.counts) == expected, later.report()
