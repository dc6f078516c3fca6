"""Ahead-of-time compilation of the ops' Triton kernels for a CUDA architecture, without a GPU.

A kernel that spills registers to local memory, or asks for more shared memory than the device
has, works under the Triton interpreter and fails or crawls on the GPU. The installed Triton
compiles for any target without a device, and ptxas (shipped with Triton) reports the registers,
spills and stack of the result; shared memory is in the kernel's metadata. This module compiles
each kernel exactly as its launcher would configure it for a shape (``launch_config``) and
returns those numbers: ``tests/ops/test_triton_aot.py`` asserts them, and
``tools/gpu_readiness.py`` writes them into docs/benchmarks.md.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from laser_core.ops import nearest_code_triton, omp_triton
from laser_core.ops.omp import triton_serves

SHARED_MEMORY_LIMIT = {80: 163 * 1024, 90: 227 * 1024}
"""Bytes of shared memory one block may use (opt-in maximum): A100 (sm_80), H100/H200 (sm_90)."""

OMP_SHAPES = [
    # (M, K, sparsity): recipes (latent 16 or 4x4x3 pixels, 256 atoms, 4), the benchmark configs
    # of docs/benchmarks.md, and the extremes M = 1024, K = 8192.
    (16, 256, 4),
    (48, 256, 4),
    (64, 512, 8),
    (3, 16, 3),
    (256, 2048, 2),
    (64, 1024, 16),
    (64, 8192, 16),
    (1024, 2048, 8),
    (1024, 8192, 16),
]
NEAREST_CODE_SHAPES = [
    # (D, K): recipes (latent 4, 8, 16 with 16 to 256 codes), the benchmark configs, extremes.
    (4, 16),
    (8, 64),
    (16, 256),
    (64, 512),
    (3, 16),
    (256, 2048),
    (64, 1024),
    (1024, 8192),
    (16, 8192),
]


@dataclass(frozen=True)
class Resources:
    """What one compiled kernel needs per block on ``arch`` (sm_XY as XY)."""

    kernel: str
    shape: str
    arch: int
    num_warps: int
    registers: int
    spill_stores: int
    spill_loads: int
    stack: int
    shared: int

    @property
    def fits(self) -> bool:
        """No spills and shared memory within the device's limit."""
        return (
            self.spill_stores == 0
            and self.spill_loads == 0
            and self.shared <= SHARED_MEMORY_LIMIT[self.arch]
        )


def compile_kernel(kernel, signature: dict, config: dict, arch: int, shape: str) -> Resources:
    """Compile ``kernel`` with argument types ``signature`` and constexprs plus ``num_warps``
    in ``config`` for sm_``arch``; Triton's cache makes a repeated configuration free."""
    constants = {name: value for name, value in config.items() if name != "num_warps"}
    source = ASTSource(
        kernel, {**signature, **dict.fromkeys(constants, "constexpr")}, constexprs=constants
    )
    compiled = triton.compile(
        source, target=GPUTarget("cuda", arch, 32), options={"num_warps": config["num_warps"]}
    )
    report = _ptxas_report(compiled.asm["ptx"], arch)
    return Resources(
        kernel=kernel.__name__,
        shape=shape,
        arch=arch,
        num_warps=config["num_warps"],
        shared=compiled.metadata.shared,
        **report,
    )


def omp_resources(arch: int) -> list[Resources | str]:
    """Each OMP shape's resources, or why ``batch_omp`` runs the torch path for it."""
    results = []
    for dim, atoms, sparsity in OMP_SHAPES:
        shape = f"M={dim} K={atoms} s={sparsity}"
        if not triton_serves(dim, sparsity):
            results.append(f"{shape}: torch path (batch_omp's routing rule)")
            continue
        config = omp_triton.launch_config(dim, atoms, sparsity, None)
        results.append(
            compile_kernel(omp_triton._batch_omp_kernel, omp_triton.SIGNATURE, config, arch, shape)
        )
    return results


def nearest_code_resources(arch: int) -> list[Resources]:
    """Each nearest-code shape's resources."""
    return [
        compile_kernel(
            nearest_code_triton._nearest_code_kernel,
            nearest_code_triton.SIGNATURE,
            nearest_code_triton.launch_config(dim, size),
            arch,
            f"D={dim} K={size}",
        )
        for dim, size in NEAREST_CODE_SHAPES
    ]


def _ptxas_report(ptx: str, arch: int) -> dict:
    """Registers, spill stores and loads, stack frame (bytes) from ``ptxas -v``."""
    ptxas = triton.knobs.nvidia.ptxas.path
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "kernel.ptx"
        source.write_text(ptx)
        gpu = f"sm_{arch}a" if arch >= 90 else f"sm_{arch}"
        run = subprocess.run(
            [ptxas, "-v", f"--gpu-name={gpu}", str(source), "-o", str(Path(folder) / "k.cubin")],
            capture_output=True,
            text=True,
            check=True,
        )
    text = run.stdout + run.stderr
    stack, stores, loads = map(
        int,
        re.search(
            r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", text
        ).groups(),
    )
    registers = int(re.search(r"Used (\d+) registers", text).group(1))
    return {"registers": registers, "spill_stores": stores, "spill_loads": loads, "stack": stack}
