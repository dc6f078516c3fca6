"""Helpers shared by tests: the `laser` command in a subprocess, and tiny real recipes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from laser_core.errors import RecipeError
from laser_core.recipes.model import load_recipe

REPO = Path(__file__).resolve().parents[1]
RECIPES = REPO / "recipes"

# Seconds on a CPU with real components: the shape of a recipe, at toy size.
TINY_RECIPE = """
seed: 0
data: {name: photo-patches, size: 16, train_patches: 64, val_patches: 16, batch_size: 8}
encoder: {name: conv, channels: [8, 16], downsamplings: 1, latent_dim: 4}
bottleneck: {name: vq, codebook_size: 16}
decoder: {name: conv, channels: [16, 8]}
metrics: [mse, psnr]
train: {steps: 6, lr: 0.005, log_every: 1, eval_batches: 1}
"""


def problems_of(path: Path, overrides: tuple[str, ...] = ()) -> str:
    """The message of the RecipeError that loading the recipe at ``path`` must raise."""
    with pytest.raises(RecipeError) as caught:
        load_recipe(path, overrides)
    return str(caught.value)


def shipped_recipes() -> list[Path]:
    """Every runnable recipe in recipes/ (the bases they extend ship in the package, under
    laser_core/recipes/base); ``recipes/sweeps`` holds sweep files and ``recipes/priors``
    prior recipes (tests/priors runs them), not run recipes."""
    return sorted(
        p
        for p in RECIPES.rglob("*.yaml")
        if not {"sweeps", "priors"} & set(p.relative_to(RECIPES).parts)
    )


def run_laser(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    """Run `python -m laser_core.cli ARGS` as a user would, capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "laser_core.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=600,
    )


def run_in_triton_interpreter(script: str) -> dict:
    """Run ``script`` (a test module whose ``__main__`` prints its findings as JSON on the
    last line) with TRITON_INTERPRET=1, so Triton kernels execute on the CPU; skip the test
    when Triton is not installed."""
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    run = subprocess.run(
        [sys.executable, script], capture_output=True, text=True, env=env, timeout=300
    )
    if run.returncode != 0 and "No module named 'triton'" in run.stderr:
        pytest.skip(f"Triton is not installed: {run.stderr.strip().splitlines()[-1]}")
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def logged(run_dir: Path) -> list[dict]:
    """metrics.jsonl's records without the keys that measure the machine (images per second,
    peak memory), which differ between two identical runs: what exact resume compares."""
    from laser_core.training.throughput import TIMING_KEYS

    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING_KEYS} for line in lines]


TWO_PROCESS_SECONDS = 120  # a tiny run takes 10-20 s on 2 busy cores


def run_two_processes(script: Path, *args: object) -> subprocess.CompletedProcess:
    """``script ARGS`` on two CPU processes under torchrun (gloo), output captured.

    Two processes that fall out of step wait on each other forever: past TWO_PROCESS_SECONDS
    the test fails and says so. torchrun is stopped with SIGTERM, not killed, so that it stops
    its workers too (they run in sessions of their own and would outlive a SIGKILL)."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(script)]
    command += map(str, args)
    launched = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = launched.communicate(timeout=TWO_PROCESS_SECONDS)
    except subprocess.TimeoutExpired:
        launched.terminate()  # torchrun stops its workers, then itself
        try:
            _, err = launched.communicate(timeout=60)
        finally:
            launched.kill()  # does nothing to a torchrun that has stopped
        pytest.fail(
            f"two processes still running after {TWO_PROCESS_SECONDS} s: one is waiting on "
            f"the other (a collective only one of them reached?); stopped them.\n"
            f"command: {' '.join(command)}\nstderr:\n{err[-3000:]}"
        )
    return subprocess.CompletedProcess(command, launched.returncode, out, err)


def write_image_folder(folder: Path, count: int = 8, size: int = 8, classes: int = 1) -> Path:
    """``count`` grayscale PNGs of ``size`` pixels (noise over a gradient, each different) in
    ``folder``, in ``classes`` subfolders when more than one: an image-folder dataset."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    gradient = np.add.outer(np.arange(size), np.arange(size)) * (200 // (2 * size))
    for index in range(count):
        place = folder / f"class{index % classes}" if classes > 1 else folder
        place.mkdir(parents=True, exist_ok=True)
        pixels = gradient + rng.integers(0, 55, size=(size, size))
        Image.fromarray(pixels.astype(np.uint8), mode="L").save(place / f"{index}.png")
    return folder
