"""Counting, on a CPU, the calls that would make the host wait for a GPU.

On a GPU these calls block the Python thread until the device has finished all queued work
(a value read back, a shape that depends on the data, a blocking collective), so the host stops
queueing kernels ahead. On a CPU nothing waits, but the same calls are made: wrapping them
shows where a GPU run would stall, without a GPU.

    with SyncCounter() as syncs:
        syncs.mark("step 1")
        ...
    syncs.calls  # [Sync(name="Tensor.item", where="laser_core/training/train.py:212", ...)]

Calls made while any frame of the stack lies under ``ignore`` are not counted (by default the
built-in plugins, whose own syncs the bottleneck tests count, and the data loading, which
works on host memory by design), nor the host-side reads listed in HOST_SIDE.
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

REPO = Path(__file__).resolve().parents[1]

# Tensor methods and torch functions whose result the host must wait for.
TENSOR_METHODS = (
    "item",
    "tolist",
    "cpu",
    "numpy",
    "__bool__",
    "__int__",
    "__float__",
    "__index__",
    "nonzero",
    "argwhere",
    "bincount",
    "unique",
    "unique_consecutive",
    "masked_select",
    "repeat_interleave",
    "equal",
    "allclose",
)
TORCH_FUNCTIONS = {
    torch: (
        "nonzero",
        "argwhere",
        "bincount",
        "unique",
        "unique_consecutive",
        "masked_select",
        "repeat_interleave",
        "equal",
        "allclose",
    ),
    # these check their result for errors on the host (the *_ex forms do not)
    torch.linalg: ("cholesky", "inv", "solve"),
    torch.cuda: ("synchronize",),
}
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
DEFAULT_IGNORE = (
    str(REPO / "plugins") + "/",
    "/torch/utils/data/",  # samplers and collation work on host memory
    "/accelerate/data_loader.py",
)
HOST_SIDE = {("torch/optim/optimizer.py", "_get_value")}
"""(file, function) whose reads are of host tensors on every device: the optimizer's step
count lives on the CPU unless ``capturable``."""


@dataclass(frozen=True)
class Sync:
    name: str
    where: str  # the innermost caller outside torch: file:line function
    label: Any  # the last mark() before the call


class SyncCounter:
    """Wraps the syncing calls while active and records each one that counts."""

    def __init__(self, ignore: tuple[str, ...] = DEFAULT_IGNORE):
        self.ignore = ignore
        self.calls: list[Sync] = []
        self.label: Any = None
        self._patches: list[tuple[Any, str, Any, bool]] = []
        self._inside = threading.local()

    def mark(self, label: Any) -> None:
        """Calls from now on are recorded under ``label`` (a step number, say)."""
        self.label = label

    def count(self, label: Any) -> int:
        return sum(1 for call in self.calls if call.label == label)

    def by_label(self) -> Counter:
        return Counter(call.label for call in self.calls)

    def __enter__(self) -> SyncCounter:
        for name in TENSOR_METHODS:
            self._wrap(torch.Tensor, name, f"Tensor.{name}", _always)
        for module, names in TORCH_FUNCTIONS.items():
            for name in names:
                self._wrap(module, name, f"{module.__name__}.{name}", _always)
        self._wrap(torch.Tensor, "multinomial", "Tensor.multinomial", _without_replacement)
        self._wrap(torch, "multinomial", "torch.multinomial", _without_replacement)
        self._wrap(torch.Tensor, "__getitem__", "Tensor[bool mask]", _boolean_index)
        self._wrap(torch.Tensor, "__setitem__", "Tensor[bool mask] =", _boolean_index)
        self._wrap(torch.Tensor, "to", "Tensor.to(cpu)", _to_host)
        for name in COLLECTIVES:
            self._wrap(dist, name, f"dist.{name}", _blocking(getattr(dist, name)))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, original, owned in reversed(self._patches):
            if owned:
                setattr(owner, name, original)
            else:
                delattr(owner, name)
        self._patches.clear()

    def _wrap(self, owner: Any, name: str, label: str, syncs: Any) -> None:
        original = getattr(owner, name)
        owned = name in vars(owner)
        counter = self

        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if getattr(counter._inside, "active", False):  # a sync inside a sync counts once
                return original(*args, **kwargs)
            counter._inside.active = True
            try:
                if syncs(args, kwargs):
                    counter._record(label, sys._getframe(1))
                return original(*args, **kwargs)
            finally:
                counter._inside.active = False

        setattr(owner, name, wrapper)
        self._patches.append((owner, name, original, owned))

    def _record(self, name: str, caller: Any) -> None:
        if (_short(caller.f_code.co_filename), caller.f_code.co_name) in HOST_SIDE:
            return
        where, frame = None, caller
        while frame is not None:
            path = frame.f_code.co_filename
            if any(part in path for part in self.ignore):
                return
            if where is None and "/torch/" not in path:
                where = f"{_short(path)}:{frame.f_lineno} {frame.f_code.co_name}"
            frame = frame.f_back
        self.calls.append(Sync(name, where or "torch", self.label))


def _short(path: str) -> str:
    for root in ("/site-packages/", str(REPO) + "/"):
        if root in path:
            return path.split(root, 1)[1]
    return path


def _always(args: tuple, kwargs: dict) -> bool:
    return True


def _without_replacement(args: tuple, kwargs: dict) -> bool:
    replacement = kwargs.get("replacement", args[2] if len(args) > 2 else False)
    return not replacement


def _boolean_index(args: tuple, kwargs: dict) -> bool:
    index = args[1]
    parts = index if isinstance(index, tuple) else (index,)
    return any(torch.is_tensor(part) and part.dtype == torch.bool for part in parts)


def _to_host(args: tuple, kwargs: dict) -> bool:
    """``.to("cpu")`` written out: a device object names the CPU in every CPU run, the
    accelerator's own device included, so only the string says "to the host"."""
    return any(t == "cpu" for t in [*args[1:], kwargs.get("device")])


def _blocking(collective: Any) -> Any:
    """Whether a torch.distributed call waits: all of them unless ``async_op=True``."""
    signature = inspect.signature(collective)

    def check(args: tuple, kwargs: dict) -> bool:
        bound = signature.bind_partial(*args, **kwargs).arguments
        return not bound.get("async_op", False)

    return check
