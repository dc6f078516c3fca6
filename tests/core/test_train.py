"""The training loop as a user relies on it: it learns, stops on NaN, and trains a model with
no parameters (exact resume, crashes, Ctrl-C and two processes: test_resume.py)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest
import torch
from accelerate.state import AcceleratorState
from safetensors.torch import load_file

from laser_core.recipes.model import load_recipe
from laser_core.training.train import TrainingDiverged, train
from tests.helpers import TINY_RECIPE

pytestmark = pytest.mark.slow


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def train_losses(run_dir: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in records(run_dir) if r["split"] == "train"}


def test_training_lowers_the_loss_and_leaves_a_complete_run_directory(write_recipe, tmp_path):
    recipe = load_recipe(write_recipe(TINY_RECIPE), ["train.steps=60", "train.precision=null"])
    result = train(recipe, tmp_path / "run")
    assert result.after["mse"] < 0.8 * result.before["mse"]
    run = result.run_dir
    umask = os.umask(0)
    os.umask(umask)
    for name in (
        "recipe.yaml",
        "plugins.json",
        "metrics.jsonl",
        "metrics.json",
        "model.safetensors",
    ):
        assert (run / name).is_file(), name
        assert (run / name).stat().st_mode & 0o777 == 0o666 & ~umask, f"{name} mode ignores umask"
    final = json.loads((run / "metrics.json").read_text())
    assert final["step"] == 60 and final["psnr"] == pytest.approx(result.after["psnr"])
    versions = json.loads((run / "plugins.json").read_text())
    assert versions["components"]["bottleneck"]["name"] == "vq"
    # precision null takes the launch's setting, and the run records what that was
    assert recipe.train.precision is None and versions["runtime"]["mixed_precision"] == "no"
    assert sorted(p.name for p in (run / "reconstructions").iterdir()) == [
        "step-0000000.png",
        "step-0000060.png",
    ]
    assert load_recipe(run / "recipe.yaml").resolved() == recipe.resolved()


@pytest.fixture
def fresh_accelerate_state():
    """Accelerate keeps one state per process, fixed by the first Accelerator: a run with
    another precision needs it cleared (and cleared again for the tests after it)."""
    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def test_a_bf16_run_on_the_cpu_trains_with_fp32_weights_and_records_its_precision(
    write_recipe, tmp_path, fresh_accelerate_state
):
    recipe = load_recipe(write_recipe(TINY_RECIPE), ["train.steps=3", "train.precision=bf16"])
    result = train(recipe, tmp_path / "run")
    versions = json.loads((result.run_dir / "plugins.json").read_text())
    assert versions["runtime"]["mixed_precision"] == "bf16"
    losses = [r["loss"] for r in records(result.run_dir) if r["split"] == "train"]
    assert len(losses) == 3 and all(math.isfinite(loss) for loss in losses)
    weights = load_file(result.run_dir / "model.safetensors")
    assert {t.dtype for k, t in weights.items() if t.is_floating_point()} == {torch.float32}
    assert math.isfinite(result.after["psnr"]) and result.after["psnr"] > 0


def test_a_diverging_loss_stops_training_naming_the_step_and_checkpoint(write_recipe, tmp_path):
    recipe = load_recipe(
        write_recipe(TINY_RECIPE),
        ["train.lr=1e30", "train.steps=10", "train.checkpoint_every=1", "train.grad_clip=null"],
    )
    with pytest.raises(TrainingDiverged) as caught:
        train(recipe, tmp_path / "run")
    message = str(caught.value)
    assert "at step" in message and "Last good checkpoint:" in message
    step = int(message.split("at step ")[1].split(";")[0])
    assert f"step-{step - 1:07d}" in message


def test_a_model_with_nothing_to_train_by_gradient_learns_in_its_forward_pass(
    write_recipe, tmp_path
):
    # identity encoder and decoder around an EMA codebook: no parameter at all
    pixels = TINY_RECIPE.replace(
        "{name: conv, channels: [8, 16], downsamplings: 1, latent_dim: 4}",
        "{name: identity, patch_size: 2}",
    ).replace("{name: conv, channels: [16, 8]}", "{name: identity}")
    recipe = load_recipe(write_recipe(pixels), ["train.steps=4", "train.checkpoint_every=2"])
    result = train(recipe, tmp_path / "run")
    assert not list(result.model.parameters())
    assert result.after["mse"] < 0.5 * result.before["mse"]
    resumed = load_recipe(result.run_dir / "recipe.yaml", ["train.steps=6"])
    train(resumed, result.run_dir, resume=True)
    assert sorted(train_losses(result.run_dir)) == [1, 2, 3, 4, 5, 6]
