"""The Triton kernels compiled ahead of time for sm_90 and sm_80, as their launchers configure
them at the recipes' and benchmarks' shapes and the extremes (M up to 1024, K up to 8192): no
register spills and shared memory within the device's limit. Then the routing of shapes the OMP
kernel does not serve, and the fallback to torch when a kernel fails to compile or launch."""

from __future__ import annotations

import warnings

import pytest
import torch

from laser_core.ops.dispatch import triton_or_torch
from laser_core.ops.omp import TRITON_MAX_DIM, triton_serves

pytest.importorskip("triton", reason="compiling the kernels ahead of time needs Triton")
# imported after the skip, as it imports triton; a broken import of our own module fails
from laser_core.ops import triton_aot as aot


@pytest.mark.parametrize("arch", [90, 80])
def test_every_kernel_compiles_without_spills_within_shared_memory(arch):
    results = aot.omp_resources(arch) + aot.nearest_code_resources(arch)
    compiled = [r for r in results if not isinstance(r, str)]
    assert len(compiled) >= len(aot.NEAREST_CODE_SHAPES) + 4
    for resources in compiled:
        assert resources.spill_stores == 0 and resources.spill_loads == 0, resources
        assert resources.shared <= aot.SHARED_MEMORY_LIMIT[arch], resources
        assert resources.fits


def test_omp_shapes_beyond_the_kernel_run_the_torch_path():
    routed = [r for r in aot.omp_resources(90) if isinstance(r, str)]
    assert [r.split(":")[0] for r in routed] == [
        "M=256 K=2048 s=2",
        "M=1024 K=2048 s=8",
        "M=1024 K=8192 s=16",
    ]
    assert triton_serves(TRITON_MAX_DIM, 16) and not triton_serves(TRITON_MAX_DIM + 1, 4)
    assert not triton_serves(16, 17)


def test_a_failing_kernel_falls_back_to_torch_once_with_a_warning_naming_the_shape():
    from triton.runtime.errors import OutOfResources

    attempts = []

    def kernel() -> torch.Tensor:
        attempts.append(1)
        raise OutOfResources(320 * 1024, 227 * 1024, "shared memory")

    def torch_path() -> torch.Tensor:
        return torch.ones(2)

    message = (
        r"^test_op: the Triton kernel failed for M=1024, K=2048, sparsity=8 \(OutOfResources: "
        r".*shared memory.*\); running the torch path for this shape from now on$"
    )
    with pytest.warns(RuntimeWarning, match=message):
        first = triton_or_torch("test_op", "M=1024, K=2048, sparsity=8", kernel, torch_path)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = triton_or_torch("test_op", "M=1024, K=2048, sparsity=8", kernel, torch_path)
    assert torch.equal(first, torch.ones(2)) and torch.equal(second, first)
    assert len(attempts) == 1  # the failed shape is not tried again
