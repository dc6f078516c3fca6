"""Starting and resuming a run in its directory: which recipe changes a resume accepts, what
it records, and how a run killed before its first checkpoint starts over."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from laser_core.errors import LaserError
from laser_core.recipes.model import Recipe
from laser_core.rundir import checkpoint, manifest
from laser_core.rundir.layout import RunDir, atomic_write_text
from laser_core.rundir.providers import load_run_recipe

log = logging.getLogger(__name__)

FINAL = (RunDir.METRICS, RunDir.WEIGHTS)
"""What a finished run adds; a resume removes them until it finishes again."""

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


def record(run_dir: Path, recipe: Recipe, step: int, changes: dict[str, list[Any]]) -> None:
    """Note the resume in run.json, write the changed recipe, and withdraw the final files,
    so that `laser eval` refuses the run until it finishes again."""
    manifest.unseal(run_dir, FINAL)
    for name in FINAL:
        (run_dir / name).unlink(missing_ok=True)
    info = read_info(run_dir)
    when = time.strftime("%Y-%m-%dT%H:%M:%S")
    info["resumes"].append({"step": step, "time": when, "changed": changes})
    files = RunDir(run_dir)
    atomic_write_text(files.run_json, json.dumps(info, indent=2) + "\n")
    if changes:
        first = files.recipe_yaml.read_text().partition("\n")[0]
        files.write_recipe(recipe, first + "\n" if first.startswith("#") else "")
        manifest.seal(run_dir, [RunDir.RECIPE])


def read_info(run_dir: Path) -> dict[str, Any]:
    """run.json: {"resumes": [{step, time, changed}, ...]}, one entry per resume."""
    path = RunDir(run_dir).run_json
    if not path.is_file():
        return {"resumes": []}
    try:
        info = json.loads(path.read_bytes())
        if isinstance(info, dict) and isinstance(info.get("resumes"), list):
            return info
    except ValueError:
        pass
    raise LaserError(f"{path} is damaged (not the JSON LASER writes); delete it to resume")


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
