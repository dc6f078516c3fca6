"""Tiny models trained for real, once per test session, for the compression tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from laser_core.recipes.model import load_recipe
from laser_core.training.train import train
from tests.compression.codec_runs import train_codec

RECIPE = """
seed: 0
data: {{name: photo-patches, size: 16, train_patches: 64, val_patches: 8, batch_size: 8}}
encoder: {encoder}
bottleneck: {bottleneck}
decoder: {decoder}
metrics: [mse]
train: {{steps: 4, lr: 0.005, log_every: 4, eval_batches: 1}}
"""

CONV = {
    "encoder": "{name: conv, channels: [8, 16], downsamplings: 1, latent_dim: 4}",
    "decoder": "{name: conv, channels: [16, 8]}",
}
RUNS = {
    "vq": {**CONV, "bottleneck": "{name: vq, codebook_size: 16}"},
    "rq": {**CONV, "bottleneck": "{name: rq, levels: 3, codebook_size: 16}"},
    "gaussian": {**CONV, "bottleneck": "{name: gaussian}"},
    "omp": {**CONV, "bottleneck": "{name: omp, atoms: 16, sparsity: 3}"},
    "fsq": {**CONV, "bottleneck": "{name: fsq, levels: [5, 5, 3], codes: index}"},
    "lfq": {**CONV, "bottleneck": "{name: lfq, dims: 6, codes: per-dimension}"},
    "pixels-omp": {
        "encoder": "{name: identity, patch_size: 2}",
        "bottleneck": "{name: omp, atoms: 16, sparsity: 3}",
        "decoder": "{name: identity}",
    },
    "hierarchical": {
        "encoder": "{name: hierarchical, channels: [8, 16], downsamplings: 1, bottom_dim: 4, "
        "top_dim: 8}",
        "bottleneck": "{name: vq, codebook_size: 16}",
        "decoder": "{name: hierarchical, channels: [16, 8]}",
    },
}


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """trained_run(name) -> the run directory of the tiny model RUNS[name]."""
    runs: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in runs:
            folder = tmp_path_factory.mktemp(name)
            recipe = folder / "recipe.yaml"
            recipe.write_text(RECIPE.format(**RUNS[name]))
            runs[name] = train(load_recipe(recipe), folder / "run").run_dir
        return runs[name]

    return get


@pytest.fixture(scope="session")
def codec_run(tmp_path_factory):
    """codec_run(name) -> the run directory of the tiny rate-trained model of codec_runs.py."""
    runs: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in runs:
            runs[name] = train_codec(tmp_path_factory.mktemp(name), name)
        return runs[name]

    return get
