"""Read the tensors of a pickled torch checkpoint without running the code it names.

Lightning checkpoints pickle callbacks, hyper-parameters and optimizer states next to the
weights, so ``torch.load(weights_only=True)`` refuses them and a full unpickle would import
(and run) whatever classes they name. This reader rebuilds tensors and plain containers and
replaces every other object by an inert placeholder.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from laser_core.errors import LaserError

_ALLOWED = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch", "Size"),
    ("torch", "device"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("builtins", "complex"),
}
"""What rebuilding tensors and plain containers needs; torch.load resolves storages itself."""


class Placeholder:
    """Stands for an object of a class the reader does not load; accepts any state."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


def _placeholder_for(module: str, name: str) -> type:
    return type(name, (Placeholder,), {"__module__": f"laser.placeholder.{module}"})


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        is_dtype = module == "torch" and isinstance(getattr(torch, name, None), torch.dtype)
        if (module, name) in _ALLOWED or is_dtype:
            return super().find_class(module, name)
        return _placeholder_for(module, name)


class _PickleModule:
    """What ``torch.load(pickle_module=...)`` expects: an Unpickler and ``load``."""

    Unpickler = _Unpickler
    __name__ = "laser_placeholder_pickle"

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        return _Unpickler(file, **kwargs).load()


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The ``state_dict`` of a Lightning checkpoint (or a bare state dict), on the CPU."""
    try:
        content = torch.load(
            path, map_location="cpu", weights_only=False, pickle_module=_PickleModule
        )
    except Exception as error:  # any decoding failure (pickle, zip, torch) means the same
        raise LaserError(f"{path}: not a readable torch checkpoint ({error})") from None
    state = content.get("state_dict", content) if isinstance(content, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise LaserError(f"{path}: holds no state_dict of tensors")
    return dict(state)
