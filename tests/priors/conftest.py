"""A tiny VQ run trained once per session, and tiny prior recipes, for the prior tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from laser_core.recipes.model import load_recipe
from laser_core.training.train import train

RUN = """
seed: 0
data: {name: digits, size: 8, batch_size: 16}
encoder: {name: conv, channels: [8], downsamplings: 1, latent_dim: 4}
bottleneck: {name: vq, codebook_size: 8}
decoder: {name: conv, channels: [8]}
metrics: [mse]
train: {steps: 4, lr: 0.005, log_every: 4, eval_batches: 1}
"""

TRANSFORMER = """
prior: {name: transformer, dim: 16, layers: 1, heads: 2, dropout: 0.0}
train: {steps: STEPS, batch_size: 8, lr: 0.01, warmup_steps: 0, eval_every: 2,
        checkpoint_every: 2, samples: 4}
"""


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished, labelled run (digits at 8 px, 4x4 VQ codes of 8 symbols); copy it with
    ``fresh_run`` before writing priors into it."""
    folder = tmp_path_factory.mktemp("tiny-run")
    recipe = folder / "recipe.yaml"
    recipe.write_text(RUN)
    return train(load_recipe(recipe), folder / "run").run_dir


@pytest.fixture
def fresh_run(tiny_run, tmp_path) -> Path:
    """A copy of the tiny run, for a test to add priors to."""
    return Path(shutil.copytree(tiny_run, tmp_path / "run"))


@pytest.fixture
def transformer_recipe(tmp_path):
    """transformer_recipe(steps, name) -> a tiny transformer prior recipe file."""

    def write(steps: int = 4, name: str = "tiny") -> Path:
        path = tmp_path / f"{name}.yaml"
        path.write_text(TRANSFORMER.replace("STEPS", str(steps)))
        return path

    return write
