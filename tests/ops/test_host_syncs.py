"""The ops on a bottleneck's device path make the host wait on nothing: counted by
``tests.sync_counter`` on the CPU (which first proves it counts every kind of syncing call)."""

from __future__ import annotations

import torch

from laser_core.ops import batch_omp, code_statistics, nearest_code, online_dictionary_update
from laser_core.ops.kmeans import cluster_statistics, kmeans
from laser_core.ops.ksvd import ksvd_update
from tests.ops.test_ksvd import training_set
from tests.sync_counter import SyncCounter


def test_the_counter_counts_every_kind_of_syncing_call():
    x = torch.tensor([0.5, 0.0, 2.0])
    with SyncCounter() as syncs:
        x.sum().item()
        bool(x.max() > 1)
        float(x[0])
        x.tolist()
        x.nonzero()
        torch.where(x > 0)
        torch.bincount(torch.tensor([0, 2]))
        x.unique()
        x[x > 0]
        x[x > 0] = 1.0
        x.masked_select(x > 0)
        torch.multinomial(torch.ones(3), 1)
        x.cpu()
        torch.tensor(0.5, device=x.device)
        torch.as_tensor([1, 2], dtype=torch.long, device=x.device)
        torch.tensor([1.0, 2.0]).to(x.device)
        torch.as_tensor([3.0]).to(x)
        # no copy of host data: a fill, a tensor already made, a device-made tensor moved
        torch.full((), 0.5, device=x.device)
        torch.as_tensor(x, device=x.device)
        (x * 0.5).to(x.device)
    assert syncs.counts == {
        "item/bool/int/float of a tensor": 3,
        "Tensor.tolist": 1,
        "nonzero": 2,
        "bincount": 1,
        "unique": 1,
        "indexing with a boolean mask": 2,
        "masked_select": 1,
        "multinomial": 1,
        "Tensor.cpu": 1,
        "torch.tensor of host data to a device": 1,
        "torch.as_tensor of host data to a device": 1,
        "Tensor.to of host data to a device": 2,
    }, syncs.report()
    assert torch.get_num_threads() >= 1


def test_kmeans_omp_nearest_code_and_online_update_never_wait_on_the_device():
    signals, dictionary = training_set(count=300)
    with SyncCounter() as syncs:
        codes = batch_omp(signals, dictionary, 3)
        nearest_code(signals, dictionary.t())
        kmeans(signals, 8, iterations=3, generator=torch.Generator().manual_seed(0))
        cluster_statistics(signals, nearest_code(signals, dictionary.t()), 40)
        products, correlations = code_statistics(signals, codes, 40)
        online_dictionary_update(dictionary, products, correlations)
    assert syncs.total == 0, syncs.report()


def test_a_ksvd_sweep_reads_back_one_number():
    signals, dictionary = training_set(count=300)
    codes = batch_omp(signals, dictionary, 3)
    codes.values[:, :][codes.indices == 7] = 0  # atom 7 unused: replaced without a read-back
    with SyncCounter() as syncs:
        result = ksvd_update(signals, dictionary, codes)
    assert syncs.counts == {"item/bool/int/float of a tensor": 1}, syncs.report()
    assert result.replaced[7]
