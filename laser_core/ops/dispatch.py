"""How the kernels in ``laser_core.ops`` choose a backend and spread CPU work over threads."""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Literal, TypeVar

import torch

Backend = Literal["auto", "torch", "triton"]
"""auto: the Triton kernel on CUDA tensors (when Triton is installed), torch elsewhere; for
``batch_omp``, a compiled C loop on CPU tensors (``laser_core.ops.omp_cpu``)."""

Share = TypeVar("Share")
Result = TypeVar("Result")

_FAILED_SHAPES: set[tuple[str, str]] = set()
"""(caller, shape) whose Triton kernel failed to compile or launch in this process."""


def use_triton(backend: Backend, tensor: torch.Tensor, caller: str) -> bool:
    """Whether ``caller`` runs its Triton kernel on ``tensor``; a forced "triton" on CPU tensors
    is only allowed under the Triton interpreter (TRITON_INTERPRET=1), for tests."""
    if backend == "torch":
        return False
    if backend == "auto":
        return tensor.is_cuda and importlib.util.find_spec("triton") is not None
    if backend == "triton":
        if not (tensor.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"):
            raise ValueError(
                f"{caller}: backend='triton' needs CUDA tensors (or TRITON_INTERPRET=1 to run "
                "the kernel on the CPU for testing); use backend='auto' or 'torch' here"
            )
        return True
    raise ValueError(f"{caller}: unknown backend {backend!r}; use 'auto', 'torch' or 'triton'")


def triton_or_torch(
    caller: str, shape: str, kernel: Callable[[], Result], torch_path: Callable[[], Result]
) -> Result:
    """``kernel()``, or ``torch_path()`` if the kernel fails to compile or launch (too much
    shared memory on this device, a compiler error): the first failure for a ``shape`` warns,
    naming it, and later calls with that shape run the torch path without trying again."""
    if (caller, shape) in _FAILED_SHAPES:
        return torch_path()
    try:
        return kernel()
    except torch.OutOfMemoryError:  # the device is full: the torch path would not help
        raise
    except Exception as error:  # Triton raises CompilationError, OutOfResources, RuntimeError
        _FAILED_SHAPES.add((caller, shape))
        warnings.warn(
            f"{caller}: the Triton kernel failed for {shape} ({type(error).__name__}: {error}); "
            "running the torch path for this shape from now on",
            RuntimeWarning,
            stacklevel=3,
        )
        return torch_path()


def in_threads(work: Callable[[Share], None], shares: list[Share]) -> None:
    """Run ``work`` on each share in its own thread with single-threaded torch ops.

    A chunk's ops are small and many; splitting each across cores costs a barrier per op,
    which stalls whenever another process holds a core. Whole chunks per thread do not.
    """
    threads = torch.get_num_threads()

    def run(share: Share) -> None:
        torch.set_num_threads(1)  # this thread's OpenMP and MKL settings
        with torch.no_grad():
            work(share)

    try:
        with ThreadPoolExecutor(len(shares)) as pool:
            for done in [pool.submit(run, share) for share in shares]:
                done.result()
    finally:
        torch.set_num_threads(threads)  # also the default for threads started later


def in_slices(work: Callable[[Iterator[slice]], None], count: int, size: int, threads: int) -> None:
    """Run ``work`` over ``count`` items in slices of ``size``: in this thread when ``threads``
    is 1 or one slice holds them all, else on up to ``threads`` threads (``in_threads``) that
    take slices from one iterator, so that a thread slowed by other jobs takes fewer."""
    starts = range(0, count, size)
    slices = iter([slice(start, min(start + size, count)) for start in starts])
    workers = min(threads, len(starts))
    if workers == 1:
        work(slices)
    else:
        in_threads(work, [slices] * workers)
