"""A finished run directory as live objects, for ``laser eval`` and everything downstream."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors.torch import load_file

from laser_core.assembly.build import Autoencoder, build_data, build_model
from laser_core.errors import LaserError
from laser_core.plugin.contracts import BuildContext, DataSplits
from laser_core.recipes.model import Recipe
from laser_core.rundir import checkpoint, manifest
from laser_core.rundir.layout import RunDir
from laser_core.rundir.providers import load_run_recipe
from laser_core.rundir.resume import FINAL, recorded_images

log = logging.getLogger(__name__)


@dataclass
class TrainedRun:
    """A finished run's recipe and model. ``data`` builds the recipe's dataset when first
    asked for, so that what needs none (decompress, compress with counted priors) opens a run
    whose dataset is gone, and what needs one can be given another (``--dataset``)."""

    run_dir: Path
    recipe: Recipe
    model: Autoencoder
    context: BuildContext
    built_data: DataSplits | None = field(default=None, repr=False)

    @property
    def data(self) -> DataSplits:
        if self.built_data is None:
            self.built_data = _run_data(self)
        return self.built_data


def load_run(
    run_dir: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = ()
) -> TrainedRun:
    """Rebuild the run's model from its recorded recipe and image shape and load its final
    weights; the dataset is built only when a command uses it.

    ``overrides`` change the recipe first, e.g. to evaluate on another dataset block; the
    model's own blocks must stay as trained or the weights will not fit.
    """
    run_dir = Path(run_dir)
    check_run(run_dir)
    weights = RunDir(run_dir).model_safetensors
    recipe = load_run_recipe(run_dir, overrides)
    images = recorded_images(run_dir)
    data = None
    if images is None:  # written before LASER recorded it: only the dataset tells
        data = _older_run_data(run_dir, recipe)
        images = data
    model, context = build_model(recipe, images)
    try:
        tensors = load_file(str(weights))
    except Exception as error:  # only reachable for a run too old to have a manifest
        raise LaserError(f"{weights} cannot be read, it is damaged: {error}") from None
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise LaserError(
            f"{weights} does not fit the recipe's model (missing: {missing[:5]}, unexpected: "
            f"{unexpected[:5]}); were encoder/bottleneck/decoder overridden?"
        )
    return TrainedRun(run_dir, recipe, model.eval(), context, data)


GIVE_DATASET = (
    "`laser eval RUN --dataset BLOCK`, `laser export RUN --data BLOCK` or `laser task RUN "
    "task.data=BLOCK`, with BLOCK e.g. '{name: image-folder, path: DIR}'"
)
"""How a command is given a dataset in place of the run's own."""


def _run_data(run: TrainedRun) -> DataSplits:
    """The dataset of ``run``'s recipe, checked to hold images its model takes."""
    wanted = f"give it a dataset of {_images(run.context)}: {GIVE_DATASET}"
    if run.recipe.data is None:
        raise LaserError(
            f"{run.run_dir} records no dataset (its model was imported without one); {wanted}"
        )
    try:
        data = build_data(run.recipe)
    except LaserError as error:
        raise LaserError(
            f"{run.run_dir}: its dataset cannot be built: {error}\nOr {wanted}"
        ) from None
    if data.image_channels != run.context.image_channels:
        raise LaserError(
            f"dataset '{run.recipe.data.name}' has {data.image_channels}-channel images; the "
            f"model of {run.run_dir} takes {_images(run.context)}"
        )
    if data.image_size % run.context.downsampling:
        raise LaserError(
            f"dataset '{run.recipe.data.name}' has images of {data.image_size} pixels, which the "
            f"model of {run.run_dir}, downsampling by {run.context.downsampling}, cannot take; "
            f"it was built for {_images(run.context)}"
        )
    return data


def _older_run_data(run_dir: Path, recipe: Recipe) -> DataSplits:
    """The dataset of a run whose run.json does not record its image shape."""
    try:
        return build_data(recipe)
    except LaserError as error:
        raise LaserError(
            f"{run_dir} does not record the image shape of its model (an older LASER wrote it), "
            f"and its dataset, which would tell it, cannot be built: {error}\nMake that "
            "dataset available again, or give one of the images the model trained on: "
            + GIVE_DATASET
        ) from None


def _images(context: BuildContext) -> str:
    return f"{context.image_channels}-channel images of {context.image_size} pixels"


def check_run(run_dir: Path) -> None:
    """Refuse a run directory that is unfinished or whose files fail their manifest; warn
    about one written before LASER kept manifests, whose files cannot be verified."""
    if not run_dir.is_dir():
        raise LaserError(f"{run_dir} is not a run directory")
    restart = (
        f"`laser run --resume {run_dir}` finishes it from its last checkpoint"
        if checkpoint.complete_checkpoints(run_dir)
        else f"`laser run {RunDir(run_dir).recipe_yaml} --run-dir {run_dir}` starts it over"
    )
    run = RunDir(run_dir)
    unfinished = f"if it is still training, wait for it to finish; if it was stopped, {restart}"
    if not run.recipe_yaml.is_file():
        raise LaserError(f"{run_dir} is not a run directory: {run.RECIPE} is missing")
    if not run.model_safetensors.is_file():
        raise LaserError(f"{run_dir} is not a finished run: {run.WEIGHTS} is missing; {unfinished}")
    if not manifest.exists(run_dir):
        log.warning(f"{run_dir} has no {run.MANIFEST} (an older LASER wrote it): unverified")
        return
    files = manifest.listed(run_dir)
    if run.WEIGHTS not in files:
        raise LaserError(
            f"{run_dir} is not a finished run: its {run.WEIGHTS} is not in "
            f"{run.MANIFEST} (written while training or stopped before it was sealed); "
            + unfinished
        )
    for name in files:
        try:
            manifest.verify(run_dir, [name])
        except manifest.DamagedFile as error:
            if name in FINAL:
                raise manifest.DamagedFile(
                    f"{error}; `laser run --resume {run_dir}` writes it again from the last "
                    "checkpoint"
                ) from None
            raise


def dataset_overrides(block: dict[str, Any]) -> list[str]:
    """Recipe overrides that replace a run's data block by ``block``, e.g. to evaluate or
    classify on another labelled dataset."""
    if "name" not in block:
        raise LaserError(f"a dataset block needs a name, e.g. {{name: digits}}; got {block}")
    return [f"data={json.dumps(block)}"]
