"""The compression baselines' recipes run: a few steps each at toy size, as shipped otherwise."""

from __future__ import annotations

import pytest

from laser_core.recipe import load_recipe
from laser_core.train import train
from tests.helpers import REPO

TOY = [
    "data.train_patches=16",
    "data.val_patches=8",
    "data.batch_size=8",
    "train.steps=2",
    "train.eval_batches=1",
    "metrics=[mse, psnr]",
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("recipe", "overrides"),
    [
        ("hierarchical.yaml", []),
        # No LPIPS weights in tests: the same losses on an untrained backbone.
        ("beta-vae-gan.yaml", ["losses.perceptual_backbone=random", "discriminator.start_step=1"]),
    ],
)
def test_recipe_trains_briefly(recipe, overrides, tmp_path):
    loaded = load_recipe(REPO / "recipes" / recipe, [*TOY, *overrides])
    result = train(loaded, tmp_path / "run")
    assert (result.run_dir / "model.safetensors").is_file()
    assert result.after["psnr"] > 0
