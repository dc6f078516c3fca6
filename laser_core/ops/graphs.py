"""Run a sweep of many small in-place kernels as one CUDA graph.

K-SVD and the online dictionary update visit the atoms in order, each update depending on the
ones before it (Gauss-Seidel), so they cannot be vectorised over atoms. On a GPU their loops
are bound by launch latency: ~10 kernels per atom, ~20,000 per sweep at K = 2048. Their loop
bodies have fixed shapes and never wait on the device, so on CUDA the whole sweep is captured
once per shapes into a CUDA graph and replayed: one launch per sweep. Elsewhere it runs as is.

A sweep that cannot be captured (an op this torch version does not capture, deterministic
kernels that sync) falls back to running eagerly, with one warning naming the sweep and shape.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Callable, Hashable

import torch

Sweep = Callable[..., None]
"""Updates its tensor arguments in place; its keyword arguments are Python constants."""

CACHED_GRAPHS = 8
"""Captured sweeps kept per process: each holds a copy of its tensors in device memory."""

_graphs: OrderedDict[Hashable, tuple[torch.cuda.CUDAGraph, list[torch.Tensor]]] = OrderedDict()
_uncapturable: set[Hashable] = set()


def run_sweep(sweep: Sweep, *tensors: torch.Tensor, **constants: Hashable) -> None:
    """``sweep(*tensors, **constants)``; on CUDA, as a graph captured on the first call with
    these shapes, dtypes and constants, whose static copies of ``tensors`` are filled before
    each replay and copied back after."""
    if not tensors[0].is_cuda:
        sweep(*tensors, **constants)
        return
    key = (
        sweep,
        tensors[0].device,
        tuple((t.shape, t.dtype) for t in tensors),
        tuple(sorted(constants.items())),
    )
    if key in _uncapturable:
        sweep(*tensors, **constants)
        return
    if key not in _graphs:
        try:
            _graphs[key] = _capture(sweep, tensors, constants)
        except RuntimeError as error:
            _uncapturable.add(key)
            shapes = ", ".join(str(tuple(t.shape)) for t in tensors)
            warnings.warn(
                f"{sweep.__qualname__}: could not capture a CUDA graph for tensors {shapes} "
                f"({error}); running the sweep eagerly for these shapes from now on",
                RuntimeWarning,
                stacklevel=2,
            )
            sweep(*tensors, **constants)
            return
        if len(_graphs) > CACHED_GRAPHS:
            _graphs.popitem(last=False)
    _graphs.move_to_end(key)
    graph, static = _graphs[key]
    for copy, tensor in zip(static, tensors, strict=True):
        copy.copy_(tensor)
    graph.replay()
    for copy, tensor in zip(static, tensors, strict=True):
        tensor.copy_(copy)


def _capture(
    sweep: Sweep, tensors: tuple[torch.Tensor, ...], constants: dict[str, Hashable]
) -> tuple[torch.cuda.CUDAGraph, list[torch.Tensor]]:
    """A graph of ``sweep`` over static copies of ``tensors``, after one warm-up run on a side
    stream (cuBLAS and allocator set-up must happen outside the capture)."""
    static = [tensor.clone() for tensor in tensors]
    side = torch.cuda.Stream(tensors[0].device)
    side.wait_stream(torch.cuda.current_stream(tensors[0].device))
    with torch.cuda.stream(side):
        sweep(*[copy.clone() for copy in static], **constants)
    torch.cuda.current_stream(tensors[0].device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        sweep(*static, **constants)
    return graph, static
