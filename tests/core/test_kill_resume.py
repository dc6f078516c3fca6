"""SIGKILL a real `laser run` at seeded random moments (a checkpoint is saved at every step,
so kills land in saves too) and resume it each time: metrics.jsonl, line by line, and the
final weights, tensor by tensor, equal those of an uninterrupted run."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from laser_core.cli.main import main
from laser_core.recipes.model import load_recipe
from laser_core.rundir import checkpoint
from laser_core.training.train import train
from tests.helpers import TINY_RECIPE, logged

pytestmark = pytest.mark.slow

OVERRIDES = [
    *("train.steps=12", "train.checkpoint_every=1", "train.keep_checkpoints=2"),
    "train.eval_every=4",
]


def test_runs_killed_at_random_moments_resume_to_the_uninterrupted_result(write_recipe, tmp_path):
    recipe = write_recipe(TINY_RECIPE)
    whole = train(load_recipe(recipe, OVERRIDES), tmp_path / "whole").run_dir
    run_dir = tmp_path / "killed"
    log = tmp_path / "stderr.txt"
    rng = random.Random(0)
    target = checkpoint.path_for(run_dir, rng.randint(2, 10))
    saving = target.with_name(f".partial-{target.name}")
    kills = [  # (when to start the clock, given whether training began; seconds after that)
        (lambda began: saving.exists(), rng.uniform(0, 0.02)),  # saving a checkpoint
        (lambda began: began(), rng.uniform(0, 0.3)),  # a moment in training
        (lambda began: began() and (run_dir / "metrics.json").exists(), 0.0),  # final files
    ]
    for event, delay in kills:
        process, began = launch(recipe, run_dir, log)
        while not event(began) and process.poll() is None:
            time.sleep(0.002)
        time.sleep(delay)
        process.kill()
        process.wait()
    assert main(continuing(recipe, run_dir)) == 0  # in-process: this one is not killed

    assert logged(run_dir) == logged(whole)
    final, expected = (load_file(str(d / "model.safetensors")) for d in (run_dir, whole))
    assert final.keys() == expected.keys()
    for key in expected:
        assert torch.equal(final[key], expected[key]), key


def launch(recipe: Path, run_dir: Path, log: Path):
    """`laser run` as a user would continue it: resume from a checkpoint, or start over when
    the run was killed before its first; and a test of whether it has begun training (it
    has rewritten metrics.jsonl, which a resume truncates and a new start begins afresh)."""
    before = identity(run_dir / "metrics.jsonl")
    command = [sys.executable, "-m", "laser_core.cli", *continuing(recipe, run_dir)]
    with open(log, "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    return process, lambda: identity(run_dir / "metrics.jsonl") not in (before, None)


def continuing(recipe: Path, run_dir: Path) -> list[str]:
    if checkpoint.complete_checkpoints(run_dir):
        return ["run", "--resume", str(run_dir)]
    return ["run", str(recipe), "--run-dir", str(run_dir), *OVERRIDES]


def identity(path: Path) -> tuple[int, int] | None:
    try:
        status = path.stat()
    except FileNotFoundError:
        return None
    return status.st_ino, status.st_mtime_ns
