"""Validation: metrics over a data loader, gathered across processes, and a picture of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from laser_core.assembly.build import Autoencoder
from laser_core.data.images import tile, to_pixels, write_png


@torch.no_grad()
def evaluate(
    model: Autoencoder,
    loader: Any,
    metrics: dict[str, Any],
    accelerator: Accelerator,
    max_batches: int | None = None,
    grid_path: Path | None = None,
) -> dict[str, float]:
    """Per-example metric values from every process, de-duplicated by gather_for_metrics,
    then summarised, with ``val_examples``: how many examples they cover (the first
    ``max_batches`` batches of every process, or the whole loader). Writes originals above
    reconstructions to ``grid_path`` (main process)."""
    was_training = model.training
    model.eval()
    collected: dict[str, list[torch.Tensor]] = {name: [] for name in metrics}
    examples = 0
    for index, batch in enumerate(loader):
        if max_batches is not None and index >= max_batches:
            if hasattr(loader, "end"):  # Accelerate's loaders unregister only when exhausted
                loader.end()
            break
        images = batch["image"]
        reconstructions, output = model(images)
        reconstructions = reconstructions.float()
        counted = torch.ones(len(images), device=images.device)
        examples += len(accelerator.gather_for_metrics(counted))
        for name, metric in metrics.items():
            values = metric.per_example(images.float(), reconstructions, output)
            collected[name].append(accelerator.gather_for_metrics(values).cpu())
        if index == 0 and grid_path is not None and accelerator.is_main_process:
            save_reconstruction_grid(images, reconstructions, grid_path)
    model.train(was_training)
    results: dict[str, float] = {}
    for name, metric in metrics.items():
        if collected[name]:
            results.update(metric.summarize(torch.cat(collected[name])))
    results["val_examples"] = examples
    return results


def save_reconstruction_grid(
    images: torch.Tensor, reconstructions: torch.Tensor, path: Path, count: int = 8
) -> None:
    """Originals in the top row, their reconstructions below, from [-1, 1] images."""
    save_image_rows([images, reconstructions], path, count)


def save_image_rows(rows: list[torch.Tensor], path: Path, count: int = 8) -> None:
    """One row per batch of [-1, 1] images (B, C, H, W), each cut to its first ``count``."""
    count = min(count, *(row.shape[0] for row in rows))
    stacked = torch.cat([row[:count] for row in rows]).float().cpu()
    write_png(to_pixels(tile(stacked, columns=count, pad_value=-1.0)), path)
