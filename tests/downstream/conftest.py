"""Tiny trained runs shared by the downstream tests: one on digits (with the classify task,
trained through `laser run` itself) and one on video clips cut into a 2 x 2 patch grid."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from laser_core import cli
from laser_core.recipes.model import load_recipe
from laser_core.training.train import train

DIGITS_RECIPE = """
seed: 0
data: {name: digits, size: 8, batch_size: 64}
encoder: {name: conv, channels: [8, 16], downsamplings: 1, latent_dim: 4}
bottleneck: {name: vq, codebook_size: 32}
decoder: {name: conv, channels: [16, 8]}
metrics: [mse]
train: {steps: 10, lr: 0.005, log_every: 5, eval_batches: 1}
task: {name: classify, epochs: 5, batch_size: 128}
"""

VIDEO_RECIPE = """
seed: 0
data: {name: video-frames, path: PATH, size: 8, grid: [2, 2], val_fraction: 0.4, batch_size: 8}
encoder: {name: conv, channels: [8], downsamplings: 1, latent_dim: 4}
bottleneck: {name: vq, codebook_size: 16}
decoder: {name: conv, channels: [8]}
metrics: [mse]
train: {steps: 3, lr: 0.005, log_every: 1, eval_batches: 1}
"""


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A run directory trained and classified by `laser run`, and what it printed."""
    folder = tmp_path_factory.mktemp("digits")
    recipe = folder / "digits.yaml"
    recipe.write_text(DIGITS_RECIPE)
    run_dir = folder / "run"
    return run_dir, _captured(lambda: cli.main(["run", str(recipe), "--run-dir", str(run_dir)]))


def _captured(call: Callable[[], int]) -> str:
    stream = io.StringIO()
    with contextlib.redirect_stdout(stream):
        assert call() == 0
    return stream.getvalue()


def write_clips(folder: Path, frames: int = 3) -> Path:
    """Four .npy clips and one folder of PNG frames, 20 x 24 pixels, a bright square moving
    right over noise, so consecutive frames differ."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    clips = []
    for _ in range(5):
        clip = rng.integers(0, 60, size=(frames, 20, 24, 3), dtype=np.uint8)
        for t in range(frames):
            clip[t, 6:14, 3 + 4 * t : 11 + 4 * t] = 230
        clips.append(clip)
    for index, clip in enumerate(clips[:4]):
        np.save(folder / f"clip{index}.npy", clip)
    (folder / "clip4").mkdir()
    for t, frame in enumerate(clips[4]):
        Image.fromarray(frame).save(folder / "clip4" / f"{t:03d}.png")
    return folder


@pytest.fixture(scope="session")
def video_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("video")
    clips = write_clips(folder / "clips")
    recipe = folder / "video.yaml"
    recipe.write_text(VIDEO_RECIPE.replace("PATH", str(clips)))
    return train(load_recipe(recipe), folder / "run").run_dir
