"""ksvd: the bottleneck contract, the same module as omp with update: ksvd, and a dictionary
that K-SVD sweeps after every optimizer step fit to the latents."""

from __future__ import annotations

import itertools

import pytest
import torch

from laser_core.assembly.build import build_component
from laser_core.errors import LaserError
from laser_core.plugin.contracts import BuildContext
from laser_core.testing import check_component
from laser_plugins.bottlenecks.dictionary.sparse_coding import DictionaryBottleneck
from tests.bottlenecks.test_omp import errors_while_learning, sparse_latents
from tests.ops.test_omp import unit_dictionary


def test_ksvd_conforms_to_the_bottleneck_contract():
    check_component("bottlenecks", "ksvd", {"atoms": 32, "sparsity": 4}, BuildContext(latent_dim=8))


def test_ksvd_is_omp_with_ksvd_updates():
    params = {"atoms": 32, "sparsity": 3, "ksvd_iterations": 2, "patch_size": 2}
    context = BuildContext(latent_dim=4)
    ksvd = build_component("bottlenecks", {"name": "ksvd", **params}, context)
    omp = build_component("bottlenecks", {"name": "omp", "update": "ksvd", **params}, context)
    assert isinstance(ksvd, DictionaryBottleneck)
    assert ksvd.config == omp.config
    assert not list(ksvd.parameters())  # the dictionary learns outside autograd
    with pytest.raises(LaserError, match="sparsity=17 exceeds"):
        build_component("bottlenecks", {"name": "ksvd", "sparsity": 17, "patch_size": 2}, context)


def test_ksvd_steps_fit_the_dictionary_to_the_latents():
    torch.manual_seed(0)
    hidden = unit_dictionary(8, 16, seed=5)
    z = sparse_latents(hidden)
    bottleneck = build_component(
        "bottlenecks",
        {"name": "ksvd", "atoms": 16, "sparsity": 2, "ksvd_iterations": 3},
        BuildContext(latent_dim=8),
    )
    bottleneck.train()
    errors = errors_while_learning(bottleneck, z, steps=4)
    # measured (seeded): 0.173 -> 0.084 relative error in four steps
    assert errors[-1] < 0.1 and errors[-1] < 0.5 * errors[0]
    assert all(b <= a for a, b in itertools.pairwise(errors))
    torch.testing.assert_close(bottleneck.dictionary.norm(dim=1), torch.ones(16))
