"""Starting and resuming a run in its directory: which recipe changes a resume accepts, what
it records, and how a run killed before its first checkpoint starts over.

run.json records the image shape the model was built for, {"channels", "size"}, so that the
run directory rebuilds its model without its dataset, and each resume."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from laser_core.errors import LaserError
from laser_core.plugin.contracts import BuildContext
from laser_core.recipes.model import Recipe
from laser_core.rundir import checkpoint, manifest
from laser_core.rundir.layout import ImageShape, RunDir
from laser_core.rundir.providers import load_run_recipe

log = logging.getLogger(__name__)

FINAL = (RunDir.METRICS, RunDir.WEIGHTS, RunDir.CODING_TABLES)
"""What a finished run adds (coding tables: a whole-image codec only); a resume removes them
until it finishes again."""

RESUMABLE = (
    "train.steps",
    "train.lr",
    "train.lr_per_component",
    "train.weight_decay",
    "train.betas",
    "train.warmup_steps",
    "train.min_lr_ratio",
    "train.grad_clip",
    "train.log_every",
    "train.eval_every",
    "train.eval_batches",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "metrics",
    "task",
)
"""Recipe keys a resume may change: none changes a shape, the data or its order."""


def check_new(run_dir: Path) -> None:
    """Refuse a ``run_dir`` that is a file or that holds a run to continue."""
    _not_a_file(run_dir)
    files = RunDir(run_dir)
    holds_run = checkpoint.complete_checkpoints(run_dir) or files.model_safetensors.exists()
    if files.recipe_yaml.exists() and holds_run:
        raise LaserError(
            f"{run_dir} already holds a run; continue it with `laser run --resume {run_dir}` "
            "(overrides such as train.steps=N allowed), or choose another --run-dir"
        )


def start_over(run_dir: Path) -> None:
    """Clear what a run killed before its first checkpoint left in ``run_dir``, so that the
    new run's metrics.jsonl does not continue the old one's."""
    files = RunDir(run_dir)
    if not files.recipe_yaml.exists():
        return
    log.warning(f"{run_dir} holds a run stopped before its first checkpoint; starting it over")
    for path in (files.metrics_jsonl, files.metrics_json, files.manifest_json, files.run_json):
        path.unlink(missing_ok=True)
    for folder in (files.reconstructions, files.checkpoints):
        shutil.rmtree(folder, ignore_errors=True)


def check_resumable(run_dir: Path) -> bool:
    """Refuse what is not a run directory or whose recipe fails its sum, before the recipe is
    parsed. False when the directory is too old to have a manifest (unverified)."""
    _not_a_file(run_dir)
    if not RunDir(run_dir).recipe_yaml.is_file():
        raise LaserError(f"{run_dir} is not a run directory: {RunDir.RECIPE} is missing")
    return manifest.verify(run_dir, [RunDir.RECIPE, RunDir.PLUGINS])


def check_resume(run_dir: Path, recipe: Recipe) -> dict[str, list[Any]]:
    """What ``recipe`` changes against the recipe ``run_dir`` recorded, as {key: [old, new]};
    refuses any change outside RESUMABLE, naming them all."""
    if not check_resumable(run_dir):
        log.warning(f"{run_dir} has no {RunDir.MANIFEST} (an older LASER wrote it): unverified")
    before = _flat(load_run_recipe(run_dir).resolved())
    after = _flat(recipe.resolved())
    changes = {
        key: [before.get(key), after.get(key)]
        for key in dict.fromkeys([*before, *after])
        if before.get(key) != after.get(key)
    }
    refused = [key for key in changes if not _may_change(key)]
    if refused:
        listed = "".join(
            f"\n  {key}: {changes[key][0]!r} -> {changes[key][1]!r}" for key in refused
        )
        raise LaserError(
            f"cannot resume {run_dir} with these changes, which alter the model's shapes, its "
            f"data or its objective:{listed}\nA resume may change only {', '.join(RESUMABLE)}. "
            f"Start a new run instead: `laser run {RunDir(run_dir).recipe_yaml} --run-dir NEW_DIR "
            "KEY=VALUE ...`"
        )
    return changes


WHOLE_IMAGES, TILES = "whole images", "tiles"
"""How ``laser compress`` codes a run's images (run.json's "coding"): in one piece, under the
bottleneck's own entropy model (coding/whole_images.py), or in tiles of the training size
under counted priors (coding/tiles.py); a run recorded before this key codes tiles."""


def start_record(run_dir: Path, images: ImageShape, coding: str = TILES) -> None:
    """Begin run.json with the image shape the model is built for and how it codes images;
    the caller seals it with the run's other files."""
    RunDir(run_dir).write_run_info({"images": _shape(images), "coding": coding, "resumes": []})


def recorded_coding(run_dir: Path) -> str:
    """WHOLE_IMAGES or TILES, as run.json records it."""
    return read_info(run_dir).get("coding", TILES)


def record(
    run_dir: Path, recipe: Recipe, step: int, changes: dict[str, list[Any]], images: ImageShape
) -> None:
    """Note the resume in run.json (and the image shape, for a run begun before LASER
    recorded it), write the changed recipe, and withdraw the final files, so that `laser eval`
    refuses the run until it finishes again."""
    manifest.unseal(run_dir, FINAL)
    for name in FINAL:
        (run_dir / name).unlink(missing_ok=True)
    info = read_info(run_dir)
    info.setdefault("images", _shape(images))
    when = time.strftime("%Y-%m-%dT%H:%M:%S")
    info["resumes"].append({"step": step, "time": when, "changed": changes})
    files = RunDir(run_dir)
    files.write_run_info(info)
    manifest.seal(run_dir, [RunDir.RUN_INFO])
    if changes:
        first = files.recipe_yaml.read_text().partition("\n")[0]
        files.write_recipe(recipe, first + "\n" if first.startswith("#") else "")
        manifest.seal(run_dir, [RunDir.RECIPE])


def read_info(run_dir: Path) -> dict[str, Any]:
    """run.json: {"images": {channels, size}, "resumes": [{step, time, changed}, ...]}; a run
    begun before LASER recorded its image shape has no "images"."""
    path = RunDir(run_dir).run_json
    if not path.is_file():
        return {"resumes": []}
    try:
        info = json.loads(path.read_bytes())
    except ValueError:
        info = None
    if not _is_info(info):
        raise LaserError(f"{path} is damaged (not the JSON LASER writes); delete it to resume")
    return info


def _is_info(info: Any) -> bool:
    if not isinstance(info, dict) or not isinstance(info.get("resumes"), list):
        return False
    images = info.get("images")
    if info.get("coding", TILES) not in (WHOLE_IMAGES, TILES):
        return False
    return images is None or (
        isinstance(images, dict)
        and set(images) == {"channels", "size"}
        and all(type(n) is int and n > 0 for n in images.values())
    )


def recorded_images(run_dir: Path) -> BuildContext | None:
    """The image shape the run's model was built for; None for a run written before LASER
    recorded it, whose shape only its dataset tells."""
    images = read_info(run_dir).get("images")
    if images is None:
        return None
    return BuildContext(image_channels=images["channels"], image_size=images["size"])


def _shape(images: ImageShape) -> dict[str, int]:
    return {"channels": images.image_channels, "size": images.image_size}


def _not_a_file(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise LaserError(f"{run_dir} is a file, not a run directory; give a folder")


def _may_change(key: str) -> bool:
    return any(key == allowed or key.startswith(allowed + ".") for allowed in RESUMABLE)


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys; lists and scalars are leaves."""
    if not isinstance(value, dict) or not value:
        return {prefix.rstrip("."): value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        flat |= _flat(item, f"{prefix}{key}.")
    return flat
