"""Export directories on disk: batch files written whole or not at all, and read back.

A batch is one ``.safetensors`` file, or with ``--format npy`` one folder of ``.npy`` files
renamed into place when complete. Either way a crash leaves a hidden temporary (a name
starting with ".") that readers ignore and the next export run deletes. The layout of the
directory and of each array is described in :mod:`laser_core.downstream.export.writer`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from laser_core.errors import LaserError, writing
from laser_core.files import atomic_write, default_mode
from laser_core.plugin.contracts import ClipLayout

Format = Literal["safetensors", "npy"]
METADATA = "metadata.json"
BATCHES = "batches"
SYMBOLS = "symbols.safetensors"
PREVIEW = "preview.safetensors"


def batch_path(root: Path, index: int, format: Format) -> Path:
    name = f"batch-{index:06d}"
    return root / BATCHES / (f"{name}.safetensors" if format == "safetensors" else name)


def write_batch(path: Path, arrays: dict[str, torch.Tensor], format: Format) -> None:
    """Write one batch's arrays atomically: a reader sees all of them or none."""
    arrays = {name: tensor.detach().cpu().contiguous() for name, tensor in arrays.items()}
    if format == "safetensors":
        atomic_write(path, lambda temporary: save_file(arrays, str(temporary)))
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        os.chmod(folder, default_mode(directory=True))
        for name, tensor in arrays.items():
            with writing(path / f"{name}.npy"), open(folder / f"{name}.npy", "wb") as stream:
                np.save(stream, tensor.numpy())
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(folder, path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def read_batch(path: Path, names: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
    """The arrays of one batch (all, or those of ``names`` it holds) as CPU tensors."""
    if path.is_dir():
        files = {file.stem: file for file in path.glob("*.npy")}
        wanted = files if names is None else [n for n in names if n in files]
        return {name: torch.from_numpy(np.load(files[name])) for name in wanted}
    with safe_open(str(path), framework="pt") as handle:
        keys = handle.keys()
        wanted = keys if names is None else [n for n in names if n in keys]
        return {name: handle.get_tensor(name) for name in wanted}


def remove_temporaries(root: Path) -> list[Path]:
    """Delete what an interrupted export left half-written; return what was removed."""
    stray = sorted((root / BATCHES).glob(".batch-*")) if (root / BATCHES).is_dir() else []
    for path in stray:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return stray


@dataclass
class Export:
    """A finished export read back: its metadata and its batches, in order."""

    root: Path
    metadata: dict[str, Any]

    @property
    def clips(self) -> ClipLayout | None:
        clips = self.metadata["clips"]
        return None if clips is None else ClipLayout(clips["frames"], tuple(clips["grid"]))

    def batches(self, names: tuple[str, ...] | None = None) -> Iterator[dict[str, torch.Tensor]]:
        for entry in self.metadata["batches"]:
            yield read_batch(self.root / entry["file"], names)

    def load(
        self, names: tuple[str, ...], max_samples: int | None = None
    ) -> dict[str, torch.Tensor]:
        """``names`` concatenated over batches, (num_samples, ...), stopping once
        ``max_samples`` are read; names the export does not hold are left out."""
        parts: dict[str, list[torch.Tensor]] = {}
        count = 0
        for batch in self.batches(names):
            for name, tensor in batch.items():
                parts.setdefault(name, []).append(tensor)
            count += len(next(iter(batch.values())))
            if max_samples is not None and count >= max_samples:
                break
        return {name: torch.cat(tensors)[:max_samples] for name, tensors in parts.items()}

    def tensors(self, file_name: str) -> dict[str, torch.Tensor]:
        """The tensors of a side file (symbols, preview); empty when it was not written."""
        path = self.root / file_name
        return read_batch(path) if path.is_file() else {}


def open_export(root: Path) -> Export:
    """Read an export directory, refusing one whose export has not finished."""
    path = root / METADATA
    if not path.is_file():
        raise LaserError(f"{root} is not an export directory: {METADATA} is missing")
    metadata = json.loads(path.read_text())
    if not metadata.get("complete"):
        raise LaserError(
            f"{root}: the export is unfinished; rerun the same `laser export` command to "
            "complete it (finished batches are kept)"
        )
    return Export(root, metadata)
