"""The training loop as a user relies on it: it learns, resumes exactly, survives a crash
while saving, stops on NaN, and keeps two processes identical."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file

from laser_core.recipes.model import load_recipe
from laser_core.training import checkpoint
from laser_core.training.train import TrainingDiverged, train
from tests.helpers import TINY_RECIPE, run_laser

pytestmark = pytest.mark.slow


def train_losses(run_dir: Path) -> dict[int, float]:
    records = (json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines())
    return {r["step"]: r["loss"] for r in records if r["split"] == "train"}


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


@pytest.mark.parametrize(
    "data",
    [
        # 64 patches / batch 8 = 8 batches per epoch: resuming at step 3 lands mid-epoch
        ["data.train_patches=64", "train.grad_accum=1"],
        # 7 batches per epoch: epochs end in the middle of an accumulated step
        ["data.train_patches=56", "train.grad_accum=2"],
    ],
    ids=["grad_accum=1", "grad_accum=2"],
)
def test_a_resumed_run_matches_the_uninterrupted_run_loss_for_loss(write_recipe, tmp_path, data):
    overrides = [*data, "train.steps=10", "train.checkpoint_every=3", "train.keep_checkpoints=5"]
    recipe = load_recipe(write_recipe(TINY_RECIPE), overrides)
    whole = train(recipe, tmp_path / "whole").run_dir
    assert optimizer_steps(checkpoint.latest(whole)) == 10

    interrupted = tmp_path / "interrupted"
    shutil.copytree(whole, interrupted)
    for later in checkpoint.complete_checkpoints(interrupted)[1:]:  # keep only step 3
        shutil.rmtree(later)
    (interrupted / "model.safetensors").unlink()
    train(recipe, interrupted, resume=True)

    expected, resumed = train_losses(whole), train_losses(interrupted)
    assert sorted(resumed) == list(range(1, 11))
    assert [resumed[s] for s in range(4, 11)] == [expected[s] for s in range(4, 11)]
    assert optimizer_steps(checkpoint.latest(interrupted)) == 10


def optimizer_steps(checkpoint_dir: Path) -> int:
    """AdamW's own step count: it must equal the loop's, whatever the epoch boundaries."""
    state = torch.load(checkpoint_dir / "optimizer.bin", weights_only=True)
    return int(state["state"][0]["step"])


def test_ctrl_c_saves_the_step_it_finished_and_the_run_resumes(write_recipe, tmp_path):
    recipe = write_recipe(TINY_RECIPE)
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "laser_core.cli", "run", str(recipe), "--run-dir"]
    process = subprocess.Popen(
        [*command, str(run_dir), "train.steps=100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = run_dir / "metrics.jsonl"
    while not (log.exists() and '"train"' in log.read_text()):
        assert process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr[-2000:]
    step = int(stderr.split("interrupted at step ")[1].split(";")[0])
    saved = checkpoint.latest(run_dir)
    assert saved == checkpoint.path_for(run_dir, step) and optimizer_steps(saved) == step
    assert "Traceback" not in stderr

    resumed = run_laser("run", "--resume", str(run_dir), f"train.steps={step + 3}")
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert sorted(train_losses(run_dir)) == list(range(1, step + 4))


def test_ctrl_c_reaching_one_of_two_processes_stops_both_after_the_same_step(
    write_recipe, tmp_path
):
    recipe = write_recipe(TINY_RECIPE)
    run_dir = tmp_path / "run"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m"]
    command = ["laser_core.cli", "run", str(recipe), "--run-dir", str(run_dir)]
    process = subprocess.Popen(
        [*launcher, *command, "train.steps=100000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = run_dir / "metrics.jsonl"
    while not (log.exists() and '"train"' in log.read_text()):
        assert process.poll() is None, process.communicate()[1][-2000:]
        time.sleep(0.2)
    workers = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    assert len(workers) == 2
    os.kill(int(workers[0]), signal.SIGINT)  # the other process never sees the signal
    _, stderr = process.communicate(timeout=120)
    steps = {int(part.split(";")[0]) for part in stderr.split("interrupted at step ")[1:]}
    assert len(steps) == 1, stderr[-3000:]  # both processes name the same step
    (step,) = steps
    saved = checkpoint.latest(run_dir)
    assert saved == checkpoint.path_for(run_dir, step) and optimizer_steps(saved) == step
    # torchrun reports the workers' exit status 1 with its own traceback; none is LASER's
    assert "laser_core/" not in stderr


def test_a_crash_while_saving_leaves_the_previous_checkpoint_the_latest(
    write_recipe, tmp_path, monkeypatch
):
    recipe = load_recipe(write_recipe(TINY_RECIPE), ["train.steps=4", "train.checkpoint_every=2"])
    real_save = Accelerator.save_state

    def save_then_crash(self, output_dir, **kwargs):
        real_save(self, output_dir, **kwargs)
        if output_dir.endswith("0000004"):
            weights = Path(output_dir) / "model.safetensors"
            weights.write_bytes(weights.read_bytes()[:100])  # torn write
            raise OSError("No space left on device")

    monkeypatch.setattr(Accelerator, "save_state", save_then_crash)
    run_dir = tmp_path / "run"
    with pytest.raises(OSError):
        train(recipe, run_dir)
    assert [p.name for p in checkpoint.complete_checkpoints(run_dir)] == ["step-0000002"]

    monkeypatch.setattr(Accelerator, "save_state", real_save)
    train(recipe, run_dir, resume=True)
    assert sorted(train_losses(run_dir)) == [1, 2, 3, 4]


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
    launched = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            str(script),
            str(recipe),
            str(run_dir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
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
