"""fp32 means fp32: with TF32 turned on globally (legacy or new API), every matrix product of
the ops that feeds a pivot, a distance or a Gram matrix runs with IEEE fp32 selected, gives
the default's results, and the caller's settings are restored afterwards."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from laser_core.ops import (
    batch_omp,
    code_statistics,
    ksvd_update,
    nearest_code,
    online_dictionary_update,
)
from laser_core.ops.kmeans import kmeans
from tests.ops.test_ksvd import training_set

PRODUCTS = {
    torch.ops.aten.mm.default,
    torch.ops.aten.addmm.default,
    torch.ops.aten.bmm.default,
    torch.ops.aten.mv.default,
    torch.ops.aten.dot.default,
    torch.ops.aten.addmv.default,
    torch.ops.aten.baddbmm.default,
}


class PrecisionAtProducts(TorchDispatchMode):
    """Records the cuBLAS and oneDNN fp32 precision in force at each matrix product."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in PRODUCTS:
            self.seen.append(
                (
                    torch.backends.cuda.matmul.fp32_precision,
                    torch.backends.mkldnn.matmul.fp32_precision,
                )
            )
        return func(*args, **(kwargs or {}))


def run_ops(signals, dictionary):
    codes = batch_omp(signals, dictionary, 3)
    products, correlations = code_statistics(signals, codes, 40)
    return [
        codes.values,
        nearest_code(signals, dictionary.t()),
        kmeans(signals, 8, generator=torch.Generator().manual_seed(0)),
        ksvd_update(signals, dictionary, codes).dictionary,
        online_dictionary_update(dictionary, products, correlations),
    ]


def legacy_tf32():
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.set_float32_matmul_precision("medium")


def new_tf32():
    torch.backends.cuda.matmul.fp32_precision = "tf32"
    torch.backends.mkldnn.matmul.fp32_precision = "bf16"


@pytest.mark.parametrize("turn_on", [legacy_tf32, new_tf32])
def test_products_run_in_ieee_fp32_whatever_the_global_settings(turn_on):
    signals, dictionary = training_set(count=300)
    default = run_ops(signals, dictionary)
    saved = (torch.backends.cuda.matmul.fp32_precision, torch.backends.mkldnn.matmul.fp32_precision)
    try:
        turn_on()
        before = (
            torch.backends.cuda.matmul.fp32_precision,
            torch.backends.mkldnn.matmul.fp32_precision,
        )
        assert before[0] == "tf32"
        with PrecisionAtProducts() as mode:
            reduced = run_ops(signals, dictionary)
        after = (
            torch.backends.cuda.matmul.fp32_precision,
            torch.backends.mkldnn.matmul.fp32_precision,
        )
    finally:
        torch.backends.cuda.matmul.fp32_precision = saved[0]
        torch.backends.mkldnn.matmul.fp32_precision = saved[1]
    assert len(mode.seen) > 100
    assert set(mode.seen) == {("ieee", "ieee")}
    assert after == before  # the caller's settings are back
    for expected, actual in zip(default, reduced, strict=True):
        assert torch.equal(expected, actual)
