"""A prior recipe: which prior to train on a finished run's codes, and how.

    prior: {name: transformer, dim: 128, layers: 4}
    train: {steps: 2000, batch_size: 64, lr: 0.0003}

The prior block is validated by its plugin's config, like any component block; the prior is
stored as ``RUN_DIR/priors/NAME``, NAME being the recipe's ``name`` or else its file stem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from laser_core.errors import LaserError, RecipeError
from laser_core.plugin.registry import Component, Registry, default_registry
from laser_core.plugin.types import PositiveFloat, PositiveInt, Seed


class PriorTrainConfig(BaseModel):
    """How a gradient-trained prior learns; a closed-form prior (counts) ignores it."""

    model_config = ConfigDict(extra="forbid")

    steps: PositiveInt = 2000
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 3e-4
    weight_decay: float = Field(0.01, ge=0)
    warmup_steps: int = Field(100, ge=0)
    eval_every: PositiveInt = 250
    checkpoint_every: PositiveInt = 500
    keep_checkpoints: PositiveInt = 2
    seed: Seed = 0
    precision: Literal["no", "fp16", "bf16"] = "no"
    samples: int = Field(16, ge=0, description="images in the samples.png grid; 0: none")


class PriorRecipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    prior: dict[str, Any]
    train: PriorTrainConfig = PriorTrainConfig()


class LoadedPriorRecipe:
    """A validated prior recipe: its name, its component and the resolved prior block."""

    def __init__(self, recipe: PriorRecipe, component: Component, block: dict[str, Any]):
        self.recipe, self.component, self.block = recipe, component, block

    @property
    def name(self) -> str:
        return self.recipe.name

    @property
    def train(self) -> PriorTrainConfig:
        return self.recipe.train

    def resolved(self) -> dict[str, Any]:
        return {"name": self.name, "prior": self.block, "train": self.train.model_dump()}


def load_prior_recipe(path: Path, registry: Registry | None = None) -> LoadedPriorRecipe:
    """Read and validate a prior recipe; every mistake is a RecipeError naming file and key."""
    if not path.is_file():
        raise LaserError(f"{path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise RecipeError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"{path}: a prior recipe is a mapping with a 'prior' block")
    data.setdefault("name", path.stem)
    try:
        recipe = PriorRecipe.model_validate(data)
    except ValidationError as error:
        raise RecipeError(f"{path}: {_first(error)}") from None
    params = dict(recipe.prior)
    name = params.pop("name", None)
    if not isinstance(name, str):
        raise RecipeError(f"{path}: prior: needs a name, e.g. {{name: transformer}}")
    component = (registry or default_registry()).get("priors", name)
    try:
        config = component.config.model_validate(params)
    except ValidationError as error:
        raise RecipeError(f"{path}: prior ({name}): {_first(error)}") from None
    block = {"name": component.reference, **config.model_dump(mode="json")}
    return LoadedPriorRecipe(recipe, component, block)


def _first(error: ValidationError) -> str:
    problem = error.errors()[0]
    key = ".".join(str(part) for part in problem["loc"])
    return f"{key}: {problem['msg']}" if key else problem["msg"]
