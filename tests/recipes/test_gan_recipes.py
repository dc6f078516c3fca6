"""The GAN recipes run briefly, log each loss on its own, and resume exactly.

No LPIPS backbone weights can be had here, so these runs override
``losses.perceptual_backbone=random``: the real LPIPS code path on a RANDOMLY INITIALISED
backbone, which tests the pipeline but is not LPIPS.
"""

from __future__ import annotations

import shutil

import pytest

from laser_core.recipes.model import load_recipe
from laser_core.rundir import checkpoint
from laser_core.training.train import train
from tests.helpers import REPO, logged

pytestmark = pytest.mark.slow

TOY = [
    "data.train_patches=32",
    "data.val_patches=8",
    "data.batch_size=8",
    "train.steps=4",
    "train.log_every=1",
    "train.eval_batches=1",
    "train.checkpoint_every=2",
    "train.keep_checkpoints=2",
    "discriminator.start_step=1",
    "losses.perceptual_backbone=random",
    "metrics=[mse, psnr]",
]


def train_records(run_dir) -> dict[int, dict]:
    return {r["step"]: r for r in logged(run_dir) if r["split"] == "train"}


def test_vqgan_logs_each_loss_apart_and_resumes_loss_for_loss(tmp_path):
    recipe = load_recipe(REPO / "recipes" / "vqgan.yaml", TOY)
    whole = train(recipe, tmp_path / "whole").run_dir
    records = train_records(whole)
    for key in ("recon", "perceptual", "adversarial", "disc", "adversarial_weight"):
        assert all(key in r for r in records.values()), key
    assert records[1]["adversarial_weight"] == 0 and records[1]["disc"] == 0  # before start
    assert all(records[s]["adversarial_weight"] > 0 for s in (2, 3, 4))
    assert all(records[s]["disc"] > 0 for s in (2, 3, 4))

    interrupted = tmp_path / "interrupted"
    shutil.copytree(whole, interrupted)
    shutil.rmtree(checkpoint.complete_checkpoints(interrupted)[-1])  # back to step 2
    train(recipe, interrupted, resume=True)
    resumed = train_records(interrupted)
    assert [resumed[s] for s in (3, 4)] == [records[s] for s in (3, 4)]


def test_omp_gan_trains_briefly(tmp_path):
    recipe = load_recipe(REPO / "recipes" / "omp-gan.yaml", [*TOY, "train.steps=2"])
    run_dir = train(recipe, tmp_path / "run").run_dir
    last = train_records(run_dir)[2]
    assert {"recon", "perceptual", "dct", "gradient", "adversarial", "disc"} <= set(last)
