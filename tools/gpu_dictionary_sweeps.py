"""The atom-by-atom dictionary sweeps on a GPU: one captured CUDA graph against eager launches,
and both against the CPU result.

    python tools/gpu_dictionary_sweeps.py                 # on cuda (tools/gpu_check.sh runs it)
    python tools/gpu_dictionary_sweeps.py --device cpu    # the same table on the CPU (no graphs)

For each shape: milliseconds per K-SVD sweep (``ksvd_update``) and per online dictionary update,
eager (every atom's kernels launched from Python) and captured (``laser_core.ops.graphs``), and
the largest difference of the dictionary from the CPU's.
"""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable
from functools import partial

import torch

from laser_core.ops import batch_omp, code_statistics, ksvd_update, online_dictionary_update
from laser_core.plugin.contracts import Codes

SHAPES = ((65536, 64, 1024, 8), (16384, 256, 2048, 2), (65536, 16, 256, 4))
"""(signals, features, atoms, sparsity)."""

MODULES = [
    importlib.import_module(f"laser_core.ops.{name}") for name in ("ksvd", "online_dictionary")
]


def eager(sweep: Callable[..., None], *tensors: torch.Tensor, **constants: object) -> None:
    sweep(*tensors, **constants)


def milliseconds(work: Callable[[], torch.Tensor], device: torch.device, repeats: int = 5) -> float:
    work()  # captures the graph, warms cuBLAS
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        work()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return 1000 * (time.perf_counter() - start) / repeats


def rows(count: int, dim: int, atoms: int, sparsity: int, device: torch.device) -> list[dict]:
    """The table's two rows for one shape: sweep, shape, eager and graph milliseconds, and the
    largest difference from the CPU's dictionary."""
    generator = torch.Generator().manual_seed(0)
    dictionary = torch.nn.functional.normalize(torch.randn(dim, atoms, generator=generator), dim=0)
    signals = torch.randn(count, dim, generator=generator)
    codes = batch_omp(signals, dictionary, sparsity)
    products, correlations = code_statistics(signals, codes, atoms)
    on_device = Codes(codes.indices.to(device), codes.values.to(device))
    sweeps = {
        "ksvd_update": (
            lambda signals, dictionary, codes: ksvd_update(signals, dictionary, codes).dictionary,
            (signals, dictionary, codes),
            (signals.to(device), dictionary.to(device), on_device),
        ),
        "online_dictionary_update": (
            online_dictionary_update,
            (dictionary, products, correlations),
            (dictionary.to(device), products.to(device), correlations.to(device)),
        ),
    }
    lines = []
    for name, (sweep, cpu_inputs, device_inputs) in sweeps.items():
        expected = sweep(*cpu_inputs)
        captured = milliseconds(partial(sweep, *device_inputs), device)
        difference = (sweep(*device_inputs).cpu() - expected).abs().max().item()
        saved = [module.run_sweep for module in MODULES]
        for module in MODULES:
            module.run_sweep = eager
        try:
            launched = milliseconds(partial(sweep, *device_inputs), device)
        finally:
            for module, run_sweep in zip(MODULES, saved, strict=True):
                module.run_sweep = run_sweep
        lines.append(
            {
                "sweep": name,
                "shape": [count, dim, atoms, sparsity],
                "eager_ms": launched,
                "graph_ms": captured,
                "max_abs_diff_vs_cpu": difference,
            }
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    device = torch.device(parser.parse_args().device)
    print("| sweep | N, M, K, s | eager ms | graph ms | eager / graph | max abs diff vs CPU |")
    print("| --- | --- | --- | --- | --- | --- |")
    for shape in SHAPES:
        for row in rows(*shape, device):
            print(
                f"| {row['sweep']} | {', '.join(map(str, row['shape']))} | {row['eager_ms']:.1f} "
                f"| {row['graph_ms']:.1f} | {row['eager_ms'] / row['graph_ms']:.1f}x "
                f"| {row['max_abs_diff_vs_cpu']:.1e} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
