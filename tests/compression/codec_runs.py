"""The tiny rate-trained models of the whole-image codec tests (conftest's ``codec_run``)."""

from __future__ import annotations

from pathlib import Path

from laser_core.recipes.model import load_recipe
from laser_core.training.train import train

RECIPE = """
seed: 0
data: {{name: photo-patches, size: 64, train_patches: 16, val_patches: 4, batch_size: 4}}
encoder: {{name: gdn-analysis, channels: 8, latent_dim: 8}}
bottleneck: {bottleneck}
decoder: {{name: gdn-synthesis, channels: 8}}
metrics: [mse, psnr, bpp]
losses: {{recon: l2, rate: 0.01}}
train: {{steps: 3, lr: 0.005, log_every: 3, eval_batches: 1}}
"""
BOTTLENECKS = {
    "factorized": "{name: factorized}",
    "hyperprior": "{name: hyperprior, hyper_channels: 8}",
    "sparse-rate": "{name: sparse-rate, atoms: 16, sparsity: 3}",
    "vq-rate": "{name: vq-rate, codebook_size: 16, group_dim: 4}",
    "fsq-rate": "{name: fsq-rate, levels: 7}",
}


def train_codec(folder: Path, name: str, steps: int = 3) -> Path:
    """The run directory of the tiny model with bottleneck BOTTLENECKS[name], trained for
    ``steps`` steps in ``folder``."""
    recipe = folder / "recipe.yaml"
    text = RECIPE.format(bottleneck=BOTTLENECKS[name])
    recipe.write_text(text.replace("steps: 3,", f"steps: {steps},"))
    return train(load_recipe(recipe), folder / "run").run_dir
