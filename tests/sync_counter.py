"""Count, on the CPU, the calls that would make the host wait for a CUDA stream.

A host sync costs little on the CPU, so a CPU test cannot time it; it can count it. Inside
``SyncCounter`` every call known to synchronise a CUDA stream is counted, by name, with the
line of code that made it:

- at the ATen level (a ``TorchDispatchMode``, so calls made inside composite ops count too):
  ``_local_scalar_dense`` (``Tensor.item``, ``bool``/``int``/``float`` of a tensor, ``if
  tensor``), ``nonzero`` (also ``torch.where(mask)``, ``argwhere``), ``bincount`` (reads min and
  max back), ``unique``, ``unique_consecutive``, ``masked_select``, ``repeat_interleave`` with a
  tensor of repeats, ``equal``, ``is_nonzero``, ``multinomial`` (its fast path for one sample
  or no replacement checks its input with an ``item``), ``index``/``index_put_`` with a boolean
  mask (a ``nonzero`` inside);
- at the Python level, for what never reaches the dispatcher on a CPU tensor:
  ``Tensor.tolist``, ``Tensor.cpu``, ``Tensor.numpy``, and the blocking ``torch.distributed``
  collectives (those called without ``async_op=True``);
- host-to-device copies of Python values, which on CUDA copy from pageable memory and wait:
  ``torch.tensor``/``torch.as_tensor`` of Python or NumPy data given a ``device``, and
  ``Tensor.to``/``Tensor.cuda`` with a device of a tensor made on the host from such data
  (by ``torch.tensor``, ``torch.as_tensor`` or ``torch.from_numpy`` while counting). On the CPU
  the device is the host, so the call is counted whatever device it names, except the string
  ``"cpu"``, which names the host on every machine (the optimizers' step counts).

Reads of host tensors that stay on the host on every device are not counted (HOST_SIDE: the
optimizer's step count), nor calls made while any frame of the stack lies in a file under one
of ``ignore`` (TRAINING_LOOP_IGNORE: the built-in plugins, whose own syncs the bottleneck tests
count, and data loading, which works on host memory by design). ``mark(label)`` files the calls
that follow under ``label``, a training step say.

The mode is thread-local, so the counter sets torch to one thread while it is active (the ops
then run their CPU work in the calling thread, as they do on CUDA) and restores it after.
Usage::

    with SyncCounter() as syncs:
        step()
    assert syncs.total == 0, syncs.report()
"""

from __future__ import annotations

import collections
import inspect
import traceback
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

ALWAYS = {
    aten._local_scalar_dense.default: "item/bool/int/float of a tensor",
    aten.nonzero.default: "nonzero",
    aten.bincount.default: "bincount",
    aten._unique2.default: "unique",
    aten.unique_dim.default: "unique",
    aten.unique_consecutive.default: "unique_consecutive",
    aten.masked_select.default: "masked_select",
    aten.repeat_interleave.Tensor: "repeat_interleave with tensor repeats",
    aten.repeat_interleave.self_Tensor: "repeat_interleave with tensor repeats",
    aten.equal.default: "equal",
    aten.is_nonzero.default: "bool of a tensor",
    aten.multinomial.default: "multinomial",
}
MASK_INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default}
PYTHON_METHODS = ("tolist", "cpu", "numpy")
FROM_HOST_DATA = ("tensor", "as_tensor", "from_numpy")
MOVES = ("to", "cuda")
HOST_MADE = "_made_from_host_data"
COLLECTIVES = (
    "all_reduce",
    "all_gather",
    "all_gather_into_tensor",
    "all_gather_object",
    "broadcast",
    "broadcast_object_list",
    "reduce",
    "reduce_scatter_tensor",
    "barrier",
)
HOST_SIDE = {
    ("torch/optim/optimizer.py", "_get_value"),
    ("laser_core/ops/omp.py", "_first_of_ties"),
}
"""(file, function) whose reads are of host tensors on every device: the optimizer's step
count lives on the CPU unless ``capturable``; Batch-OMP's ties, searched on the CPU only."""
TRAINING_LOOP_IGNORE = (
    str(Path(__file__).resolve().parents[1] / "plugins") + "/",
    "/torch/utils/data/",  # samplers and collation
    "/accelerate/data_loader.py",  # its seedable sampler
)


class Sync(NamedTuple):
    name: str
    site: str  # file:line of the innermost caller outside torch
    label: Any  # the last mark() before the call


class SyncCounter(TorchDispatchMode):
    """Counts host-syncing calls made while active (see the module docstring)."""

    def __init__(self, ignore: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.ignore = ignore
        self.counts: collections.Counter[str] = collections.Counter()
        self.sites: list[Sync] = []
        self.label: Any = None
        self._saved: dict[tuple[Any, str], object] = {}
        self._threads = 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def mark(self, label: Any) -> None:
        """File the calls from now on under ``label``."""
        self.label = label

    def count(self, label: Any) -> int:
        return sum(1 for sync in self.sites if sync.label == label)

    def report(self) -> str:
        lines = (f"{s.name} at {s.site}" + (f" ({s.label})" if s.label else "") for s in self.sites)
        return "\n".join(lines) or "no host syncs"

    def _count(self, name: str) -> None:
        stack = traceback.extract_stack()[:-2]
        for frame in stack:
            if any(part in frame.filename for part in self.ignore):
                return
            if any(frame.filename.endswith(f) and frame.name == n for f, n in HOST_SIDE):
                return
        frames = [
            frame
            for frame in stack
            if "torch/" not in frame.filename and frame.filename != __file__
        ]
        site = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        self.counts[name] += 1
        self.sites.append(Sync(name, site, self.label))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in ALWAYS:
            self._count(ALWAYS[func])
        elif func in MASK_INDEXING:
            indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
            if any(i is not None and i.dtype == torch.bool for i in indices):
                self._count("indexing with a boolean mask")
        return func(*args, **kwargs)

    def __enter__(self):
        self._threads = torch.get_num_threads()
        torch.set_num_threads(1)
        for name in PYTHON_METHODS:
            original = getattr(torch.Tensor, name)
            self._saved[torch.Tensor, name] = original

            def counted(tensor, *args, _name=name, _original=original, **kwargs):
                self._count(f"Tensor.{_name}")
                return _original(tensor, *args, **kwargs)

            setattr(torch.Tensor, name, counted)
        for name in FROM_HOST_DATA:
            self._saved[torch, name] = getattr(torch, name)
            setattr(torch, name, self._from_host_data(name, getattr(torch, name)))
        for name in MOVES:
            self._saved[torch.Tensor, name] = getattr(torch.Tensor, name)
            setattr(torch.Tensor, name, self._move(name, getattr(torch.Tensor, name)))
        for name in COLLECTIVES:
            original = getattr(dist, name)
            self._saved[dist, name] = original
            setattr(dist, name, self._blocking(name, original))
        return super().__enter__()

    def _from_host_data(self, name: str, make: Any) -> Any:
        """``make`` (torch.tensor, as_tensor, from_numpy), counted when it copies Python or
        NumPy data to a named device; its result marked as made on the host otherwise."""

        def counted(data: Any, *args: Any, **kwargs: Any) -> Any:
            positional = args[1] if name == "as_tensor" and len(args) > 1 else None
            device = kwargs.get("device", positional)
            tensor = make(data, *args, **kwargs)
            if isinstance(data, torch.Tensor):
                return tensor
            if device is not None and device != "cpu":  # "cpu" by name: the host anywhere
                self._count(f"torch.{name} of host data to a device")
            else:
                setattr(tensor, HOST_MADE, True)
            return tensor

        return counted

    def _move(self, name: str, move: Any) -> Any:
        """``Tensor.to``/``Tensor.cuda``, counted when it sends host-made data to a device."""

        def counted(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if getattr(tensor, HOST_MADE, False):
                device = torch._C._nn._parse_to(*args, **kwargs)[0] if name == "to" else "cuda"
                if device is not None:
                    self._count(f"Tensor.{name} of host data to a device")
            return move(tensor, *args, **kwargs)

        return counted

    def _blocking(self, name: str, collective: Any) -> Any:
        """``collective``, counted unless called with ``async_op=True``."""
        signature = inspect.signature(collective)

        def counted(*args: Any, **kwargs: Any) -> Any:
            if not signature.bind_partial(*args, **kwargs).arguments.get("async_op", False):
                self._count(f"dist.{name}")
            return collective(*args, **kwargs)

        return counted

    def __exit__(self, *exc):
        for (owner, name), original in self._saved.items():
            setattr(owner, name, original)
        torch.set_num_threads(self._threads)
        return super().__exit__(*exc)
