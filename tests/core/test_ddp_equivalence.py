"""Two CPU processes with DDP (buffers not broadcast) train the same model as one process on
the combined batches: the same function (reconstructions) and the same codebook.

Parameters are compared through the model's output rather than one by one: a convolution's
bias followed by a group norm is cancelled by it, so its gradient is rounding noise that Adam
scales up to a step of the learning rate, differently in the two runs, with no effect on the
output."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from laser_core.recipes.model import load_recipe
from laser_core.training.train import train
from tests.helpers import TINY_RECIPE, run_two_processes

# No k-means seeding or dead-code revival: both draw from rank 0's batch alone by design.
RECIPE = TINY_RECIPE.replace("steps: 6", "steps: 4").replace(
    "{name: vq, codebook_size: 16}",
    "{name: vq, codebook_size: 16, kmeans_init: false, revive_dead_codes: false}",
)


@pytest.mark.slow
def test_two_processes_equal_one_process_on_the_combined_batches(write_recipe, tmp_path):
    recipe_path = write_recipe(RECIPE)
    script = Path(__file__).with_name("two_process_train.py")
    launched = run_two_processes(script, recipe_path, tmp_path / "two")
    assert launched.returncode == 0, launched.stderr[-3000:]
    two = load_file(str(tmp_path / "two" / "rank0-of-2.safetensors"))
    one = train(load_recipe(recipe_path, ["data.batch_size=16"]), tmp_path / "one").model.eval()
    codebook = "bottleneck.codebook.weight"
    torch.testing.assert_close(two[codebook], one.state_dict()[codebook], atol=1e-5, rtol=0)
    images = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = one(images)[0]
        one.load_state_dict(two)
        reconstructions = one(images)[0]
    assert expected.abs().mean() > 0.01
    torch.testing.assert_close(reconstructions, expected, atol=1e-5, rtol=0)
