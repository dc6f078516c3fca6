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
  ``Tensor.tolist``, ``Tensor.cpu``, ``Tensor.numpy``.

The mode is thread-local, so the counter sets torch to one thread while it is active (the ops
then run their CPU work in the calling thread, as they do on CUDA) and restores it after.
Usage::

    with SyncCounter() as syncs:
        step()
    assert syncs.total == 0, syncs.report()
"""

from __future__ import annotations

import collections
import traceback

import torch
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


class SyncCounter(TorchDispatchMode):
    """Counts host-syncing calls made while active (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()
        self.sites: list[tuple[str, str]] = []
        self._saved: dict[str, object] = {}
        self._threads = 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def report(self) -> str:
        return "\n".join(f"{name} at {site}" for name, site in self.sites) or "no host syncs"

    def _count(self, name: str) -> None:
        frames = [
            frame
            for frame in traceback.extract_stack()[:-2]
            if "torch/" not in frame.filename and frame.filename != __file__
        ]
        site = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        self.counts[name] += 1
        self.sites.append((name, site))

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
            self._saved[name] = original

            def counted(tensor, *args, _name=name, _original=original, **kwargs):
                self._count(f"Tensor.{_name}")
                return _original(tensor, *args, **kwargs)

            setattr(torch.Tensor, name, counted)
        return super().__enter__()

    def __exit__(self, *exc):
        for name, original in self._saved.items():
            setattr(torch.Tensor, name, original)
        torch.set_num_threads(self._threads)
        return super().__exit__(*exc)
