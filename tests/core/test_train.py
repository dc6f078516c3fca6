"""The training loop as a user relies on it: it learns, stops on NaN, and trains a model with
no parameters, and takes no host-device round trip in a step it neither logs, validates nor
checkpoints, on two processes too (exact resume, crashes and Ctrl-C: test_resume.py)."""

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
from laser_core.rundir import checkpoint
from laser_core.training.train import TrainingDiverged, train
from tests.helpers import TINY_RECIPE, run_two_processes

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


def test_a_loss_read_only_at_checked_steps_still_names_the_first_bad_step(write_recipe, tmp_path):
    # the loss is read at log, validation and checkpoint steps: here only steps 4 and 8
    recipe = load_recipe(
        write_recipe(TINY_RECIPE),
        [
            "train.lr=1e30",
            "train.steps=8",
            "train.log_every=100",
            "train.checkpoint_every=4",
            "train.grad_clip=null",
        ],
    )
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as caught:
        train(recipe, run_dir)
    message = str(caught.value)
    first = int(message.split("at step ")[1].split(";")[0])
    assert first == 2 and "training stopped at step 4 (the loss is read at log" in message
    # the check comes before the checkpoint: none is written from a diverged state
    assert "Last good checkpoint: none" in message
    assert checkpoint.complete_checkpoints(run_dir) == []
    assert train_losses(run_dir) == {}


def test_two_cpu_processes_end_with_identical_parameters_and_codebooks_without_waiting(
    write_recipe, tmp_path
):
    # steps 1 and 2 neither log, validate nor checkpoint: they must not wait for the device
    recipe = write_recipe(
        TINY_RECIPE.replace("steps: 6", "steps: 4").replace("log_every: 1", "log_every: 3")
    )
    run_dir = tmp_path / "run"
    script = Path(__file__).with_name("two_process_train.py")
    launched = run_two_processes(script, recipe, run_dir)
    assert launched.returncode == 0, launched.stderr[-3000:]
    rank0 = load_file(str(run_dir / "rank0-of-2.safetensors"))
    rank1 = load_file(str(run_dir / "rank1-of-2.safetensors"))
    assert rank0.keys() == rank1.keys()
    assert any("bottleneck" in key for key in rank0)
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    for rank in (0, 1):
        assert json.loads((run_dir / f"rank{rank}-of-2-syncs.json").read_text()) == []


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
