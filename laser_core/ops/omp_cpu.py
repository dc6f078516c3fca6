"""Batch-OMP on the CPU as a compiled C loop over signals (``omp_cpu.c``).

The torch path runs each OMP step over many signals at once: every step streams the
correlations of all of them through memory, several passes per step. The C loop codes one
signal at a time through all its steps, its correlations (K floats) in the L1 cache and the
Gram matrix in L2, and the compiler vectorises the passes over atoms; that is several
times faster than the torch path (tools/bench_omp_cpu.py measures it against scikit-learn).
Each step is the torch path's (see ``laser_core.ops.omp``), with the same thresholds.

The source is compiled with the system C compiler ($CC, else ``cc``) for this machine's CPU on
first use and cached under $XDG_CACHE_HOME/laser/kernels (``~/.cache`` without it), keyed by
the source, the flags and the CPU. Should that fail (no compiler), ``batch_omp`` warns once and
codes with the torch path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import warnings
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import torch

from laser_core.nn.codes import Codes
from laser_core.ops.dispatch import in_slices
from laser_core.ops.omp_thresholds import DEGENERATE_PIVOT, NEGLIGIBLE_CORRELATION

SOURCE = Path(__file__).with_name("omp_cpu.c")
FLAGS = [
    "-O3",
    "-march=native",
    "-shared",
    "-fPIC",
    # Vectorised max over atoms: no NaN, signs of zero irrelevant (|α| ≥ 0, finite signals).
    "-fno-math-errno",
    "-fno-trapping-math",
    "-ffinite-math-only",
    "-fno-signed-zeros",
]

BLOCK_ELEMENTS = 2**17
"""Signals x atoms whose correlations α₀ = Dᵀx one matrix product computes at once: a block
stays in the L2 cache while the C loop codes it."""


def cpu_batch_omp(
    signals: torch.Tensor,
    dictionary: torch.Tensor,
    sparsity: int,
    tolerance: float | None,
    block_size: int | None,
) -> Codes | None:
    """Codes of fp32 CPU ``signals`` (N, M) over ``dictionary`` (M, K), as ``batch_omp``
    returns them; None where the C loop cannot be built here (a warning said why once).

    Signals are coded ``block_size`` at a time (default: ``BLOCK_ELEMENTS`` // K), each of
    torch's threads taking whole blocks from one queue, as the torch path takes chunks."""
    function = _compiled()
    if function is None:
        return None
    count, atoms = signals.shape[0], dictionary.shape[1]
    block_size = block_size or max(1, BLOCK_ELEMENTS // atoms)
    gram = (dictionary.t() @ dictionary).contiguous()
    energies = signals.square().sum(1)
    indices = torch.empty(count, sparsity, dtype=torch.long)
    values = torch.empty(count, sparsity)
    limit = -1.0 if tolerance is None else tolerance  # negative: no tolerance

    def code(blocks: Iterator[slice]) -> None:
        initial = torch.empty(min(block_size, count), atoms)
        workspace = torch.empty(atoms + sparsity * (sparsity + 3))  # see omp_cpu.c
        chosen = torch.empty(sparsity, dtype=torch.long)
        for rows in blocks:
            block = initial[: rows.stop - rows.start]
            torch.mm(signals[rows], dictionary, out=block)
            function(
                len(block),
                atoms,
                sparsity,
                gram.data_ptr(),
                block.data_ptr(),
                energies[rows].data_ptr(),
                limit,
                NEGLIGIBLE_CORRELATION,
                DEGENERATE_PIVOT,
                indices[rows].data_ptr(),
                values[rows].data_ptr(),
                workspace.data_ptr(),
                chosen.data_ptr(),
            )

    in_slices(code, count, block_size, torch.get_num_threads())
    return Codes(indices, values)


@cache
def _compiled() -> ctypes._CFuncPtr | None:
    """The C loop, built on first use; None (and one warning) if it cannot be built."""
    compiler = os.environ.get("CC", "cc")
    source = SOURCE.read_text()
    key = hashlib.sha256("\n".join([source, compiler, *FLAGS, _cpu()]).encode()).hexdigest()
    library = _cache_dir() / f"omp_cpu-{key[:16]}.so"
    try:
        if not library.exists():
            library.parent.mkdir(parents=True, exist_ok=True)
            partial = library.with_suffix(f".{os.getpid()}.tmp")
            subprocess.run(
                [compiler, *FLAGS, str(SOURCE), "-o", str(partial)],
                check=True,
                capture_output=True,
                text=True,
            )
            partial.replace(library)  # atomic: a concurrent process loads a whole file
        function = ctypes.CDLL(str(library)).batch_omp_signals
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", None) or error
        warnings.warn(
            f"batch_omp: could not build the CPU kernel with {compiler!r} ({detail}); the "
            "torch path codes CPU signals in this process, several times slower. Install "
            "a C compiler (or set $CC) to use the kernel",
            RuntimeWarning,
            stacklevel=4,
        )
        return None
    pointer, integer, real = ctypes.c_void_p, ctypes.c_int64, ctypes.c_float
    function.argtypes = [integer] * 3 + [pointer] * 3 + [real] * 3 + [pointer] * 4
    function.restype = None
    return function


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "laser" / "kernels"


def _cpu() -> str:
    """What ``-march=native`` compiles for: the CPU's model and instruction sets, so that a
    cache shared by machines of different CPUs keeps one library per CPU."""
    try:
        with open("/proc/cpuinfo") as info:
            lines = [line for line in info if line.startswith(("model name", "flags"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
