"""Launched by test_train.py under torchrun: train a tiny recipe on 2 CPU processes, then
each rank writes its own parameters and buffers so the test can compare them."""

import sys
from pathlib import Path

from accelerate import PartialState
from safetensors.torch import save_file

from laser_core.recipes.model import load_recipe
from laser_core.training.train import train

recipe_path, run_dir = Path(sys.argv[1]), Path(sys.argv[2])
result = train(load_recipe(recipe_path), run_dir)
state = PartialState()
model = result.model
tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
save_file(tensors, str(run_dir / f"rank{state.process_index}-of-{state.num_processes}.safetensors"))
