"""Launched by test_train.py under torchrun: train a tiny recipe on 2 CPU processes, counting
the calls that would wait for a GPU in each step; then each rank writes its own parameters and
buffers, and the syncs of steps that neither log, validate nor checkpoint, for the test."""

import json
import sys
from pathlib import Path

from accelerate import PartialState
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for tests.*

from laser_core.recipes.model import load_recipe
from laser_core.training import train as training
from tests.sync_counter import TRAINING_LOOP_IGNORE, SyncCounter

recipe_path, run_dir = Path(sys.argv[1]), Path(sys.argv[2])
recipe = load_recipe(recipe_path)
real_step = training._Loop._step
with SyncCounter(ignore=TRAINING_LOOP_IGNORE) as syncs:

    def marked_step(self, state, *args):
        syncs.mark(state.step + 1)
        return real_step(self, state, *args)

    training._Loop._step = marked_step
    result = training.train(recipe, run_dir)
state = PartialState()
model = result.model
tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
name = f"rank{state.process_index}-of-{state.num_processes}"
save_file(tensors, str(run_dir / f"{name}.safetensors"))
config = recipe.train
checked = {config.steps, *range(config.log_every, config.steps + 1, config.log_every)}
unchecked = [f"{s.name} at {s.site}" for s in syncs.sites if s.label not in checked | {None}]
(run_dir / f"{name}-syncs.json").write_text(json.dumps(unchecked))
