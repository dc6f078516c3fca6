"""The training loop as a user relies on it: it learns, resumes exactly, survives a crash
while saving, stops on NaN, and keeps two processes identical."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file

from laser_core import checkpoint
from laser_core.recipe import load_recipe
from laser_core.train import TrainingDiverged, train
from tests.helpers import TINY_RECIPE

pytestmark = pytest.mark.slow


def train_losses(run_dir: Path) -> dict[int, float]:
    records = (json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines())
    return {r["step"]: r["loss"] for r in records if r["split"] == "train"}


def test_training_lowers_the_loss_and_leaves_a_complete_run_directory(write_recipe, tmp_path):
    recipe = load_recipe(write_recipe(TINY_RECIPE), ["train.steps=60"])
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
    assert sorted(p.name for p in (run / "reconstructions").iterdir()) == [
        "step-0000000.png",
        "step-0000060.png",
    ]
    assert load_recipe(run / "recipe.yaml").resolved() == recipe.resolved()


def test_a_resumed_run_matches_the_uninterrupted_run_loss_for_loss(write_recipe, tmp_path):
    # 64 patches / batch 8 = 8 batches per epoch: resuming at step 3 lands mid-epoch.
    overrides = ["train.steps=10", "train.checkpoint_every=3", "train.keep_checkpoints=5"]
    recipe = load_recipe(write_recipe(TINY_RECIPE), overrides)
    whole = train(recipe, tmp_path / "whole").run_dir

    interrupted = tmp_path / "interrupted"
    shutil.copytree(whole, interrupted)
    for later in checkpoint.complete_checkpoints(interrupted)[1:]:  # keep only step 3
        shutil.rmtree(later)
    (interrupted / "model.safetensors").unlink()
    train(recipe, interrupted, resume=True)

    expected, resumed = train_losses(whole), train_losses(interrupted)
    assert sorted(resumed) == list(range(1, 11))
    assert [resumed[s] for s in range(4, 11)] == [expected[s] for s in range(4, 11)]


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


def test_two_cpu_processes_end_with_identical_parameters_and_codebooks(write_recipe, tmp_path):
    recipe = write_recipe(TINY_RECIPE.replace("steps: 6", "steps: 4"))
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
