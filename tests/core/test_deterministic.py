"""train.deterministic: deterministic kernels and a fixed cuBLAS workspace for the process, and
a run that repeats itself."""

from __future__ import annotations

import json
import os

import pytest
import torch

from laser_core.recipes.model import load_recipe
from laser_core.training.train import train
from tests.helpers import TINY_RECIPE


@pytest.fixture
def restore_determinism(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark
    yield
    torch.use_deterministic_algorithms(before[0])
    torch.backends.cudnn.benchmark = before[1]


def losses(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if r["split"] == "train"]


def test_deterministic_training_sets_the_process_up_and_repeats_itself(
    write_recipe, tmp_path, restore_determinism
):
    recipe = load_recipe(write_recipe(TINY_RECIPE), ["train.steps=3", "train.deterministic=true"])
    assert not torch.are_deterministic_algorithms_enabled()
    train(recipe, tmp_path / "first")
    assert torch.are_deterministic_algorithms_enabled()
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert not torch.backends.cudnn.benchmark
    train(recipe, tmp_path / "second")
    assert losses(tmp_path / "first") == losses(tmp_path / "second")
