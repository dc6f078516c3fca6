"""What the dataset plugins share: in-memory image sets and deterministic stratified splits."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from laser_core import LaserError


def to_signed_unit(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels (..., C, H, W) as float32 in [-1, 1], the range every component expects."""
    return pixels.float().div(127.5).sub(1.0)


class InMemoryImages(Dataset):
    """Small image sets built at construction, kept as uint8 (N, C, H, W) to spend a quarter
    of float32's memory, served as {"image": float32 (C, H, W) in [-1, 1], "label", "index"}."""

    def __init__(self, pixels: torch.Tensor, labels: torch.Tensor | None = None):
        self.pixels, self.labels = pixels, labels

    def __len__(self) -> int:
        return self.pixels.shape[0]

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        item: dict[str, torch.Tensor | int] = {
            "image": to_signed_unit(self.pixels[index]),
            "index": index,
        }
        if self.labels is not None:
            item["label"] = int(self.labels[index])
        return item


def split_indices(
    labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train/val row indices, stratified by ``labels`` (shape (N,); pass zeros
    for unlabelled data).

    Rows are shuffled with ``seed``, grouped by label, and every k-th row goes to val, so each
    class gives about ``val_fraction`` of its rows, even classes of one or two rows where a
    per-class rounding would give none. Both splits are returned in shuffled order: evaluation
    may read only the first batches of val, which must not all be one class.
    """
    count = len(labels)
    if count < 2:
        raise LaserError(f"a train/val split needs at least 2 images, found {count}")
    rng = np.random.default_rng(seed)
    grouped = rng.permutation(count)
    grouped = grouped[np.argsort(labels[grouped], kind="stable")]
    val_count = min(max(round(val_fraction * count), 1), count - 1)
    picks = ((np.arange(val_count) + 0.5) * count / val_count).astype(int)
    is_val = np.zeros(count, dtype=bool)
    is_val[grouped[picks]] = True
    order = rng.permutation(count)
    return order[~is_val[order]], order[is_val[order]]
