"""A finished run directory as live objects, for ``laser eval`` and everything downstream."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors.torch import load_file

from laser_core.errors import LaserError
from laser_core.plugin.contracts import BuildContext, DataSplits
from laser_core.recipes.model import Recipe, load_recipe
from laser_core.training.build import Autoencoder, build_data, build_model


@dataclass
class TrainedRun:
    run_dir: Path
    recipe: Recipe
    model: Autoencoder
    context: BuildContext
    data: DataSplits


def load_run(run_dir: Path, overrides: list[str] | tuple[str, ...] = ()) -> TrainedRun:
    """Rebuild the run's model from its recorded recipe and load its final weights.

    ``overrides`` change the recipe first, e.g. to evaluate on another dataset block; the
    model's own blocks must stay as trained or the weights will not fit.
    """
    recipe_path, weights = run_dir / "recipe.yaml", run_dir / "model.safetensors"
    for needed in (recipe_path, weights):
        if not needed.is_file():
            raise LaserError(f"{run_dir} is not a finished run directory: {needed.name} is missing")
    recipe = load_recipe(recipe_path, overrides)
    data = build_data(recipe)
    model, context = build_model(recipe, data)
    missing, unexpected = model.load_state_dict(load_file(str(weights)), strict=False)
    if missing or unexpected:
        raise LaserError(
            f"{weights} does not fit the recipe's model (missing: {missing[:5]}, unexpected: "
            f"{unexpected[:5]}); were encoder/bottleneck/decoder overridden?"
        )
    return TrainedRun(run_dir, recipe, model.eval(), context, data)


def dataset_overrides(block: dict[str, Any]) -> list[str]:
    """Recipe overrides that replace a run's data block by ``block``, e.g. to evaluate or
    classify on another labelled dataset."""
    if "name" not in block:
        raise LaserError(f"a dataset block needs a name, e.g. {{name: digits}}; got {block}")
    return ["~data", *[f"data.{key}={json.dumps(value)}" for key, value in block.items()]]
