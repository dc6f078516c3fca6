"""Resumable checkpoints: ``checkpoints/step-000500/`` holds the Accelerate state (weights as
safetensors, optimizer, scheduler, every process's RNG), ``trainer.json`` and, written last,
``manifest.json`` with the sha256 of each of them.

A checkpoint is written under a temporary name and renamed when complete, so a folder named
``step-*`` is always whole: a crash mid-save leaves the previous checkpoint the latest. Bytes
damaged later fail the manifest, and resuming falls back to the newest intact checkpoint.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from laser_core.errors import LaserError, writing
from laser_core.rundir import manifest
from laser_core.rundir.layout import RunDir

if TYPE_CHECKING:  # accelerate takes a tenth of a second to import; laser validate needs none
    from accelerate import Accelerator

log = logging.getLogger(__name__)

PREFIX = "step-"
TRAINER_STATE = "trainer.json"


@dataclass
class TrainerState:
    """Where the loop stands: optimizer steps done and micro-batches consumed."""

    step: int = 0
    batches_seen: int = 0


def checkpoint_dir(run_dir: Path) -> Path:
    return RunDir(run_dir).checkpoints


def path_for(run_dir: Path, step: int) -> Path:
    return checkpoint_dir(run_dir) / f"{PREFIX}{step:07d}"


def save(accelerator: Accelerator, run_dir: Path, state: TrainerState, keep: int) -> Path:
    """Save on every process (each writes its RNG state); seal and rename into place on the
    main one once every process has finished writing (save_state ends without a barrier)."""
    final = path_for(run_dir, state.step)
    partial = final.with_name(f".partial-{final.name}")
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    with writing(partial):
        accelerator.save_state(str(partial), safe_serialization=True)
    accelerator.wait_for_everyone()  # every rank's RNG state is in before the rename
    if accelerator.is_main_process:
        with writing(partial):
            (partial / TRAINER_STATE).write_text(json.dumps(asdict(state)))
            manifest.seal_all(partial)
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        for old in complete_checkpoints(run_dir)[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return final


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Whole checkpoints, oldest first."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [
        p
        for p in folder.iterdir()
        if p.name.startswith(PREFIX) and p.name[len(PREFIX) :].isdigit() and p.is_dir()
    ]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def latest(run_dir: Path) -> Path | None:
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None


def latest_intact(run_dir: Path) -> Path | None:
    """The newest checkpoint whose files match its manifest (or that has none to check)."""
    for path in reversed(complete_checkpoints(run_dir)):
        try:
            manifest.verify(path)
        except manifest.DamagedFile:
            continue
        return path
    return None


def load(accelerator: Accelerator, run_dir: Path) -> TrainerState:
    """Restore the newest intact checkpoint into the prepared objects, skipping damaged ones
    with a warning that names them; their steps are trained and saved again."""
    damaged = []
    for path in reversed(complete_checkpoints(run_dir)):
        try:
            state = _restore(accelerator, path)
        except manifest.DamagedFile as error:
            damaged.append(str(error))
            continue
        if accelerator.is_main_process:
            for reason in damaged:
                log.warning(f"skipped a damaged checkpoint: {reason}")
            if damaged:
                log.warning(f"resuming from {path}, the newest intact checkpoint")
        return state
    recipe = RunDir(run_dir).recipe_yaml
    start_over = f"start the run over with `laser run {recipe} --run-dir {run_dir}`"
    if damaged:
        reasons = "".join(f"\n  {reason}" for reason in damaged)
        raise LaserError(f"every checkpoint of {run_dir} is damaged:{reasons}\n{start_over}")
    raise LaserError(
        f"{run_dir} has no complete checkpoint to resume from (looked in "
        f"{checkpoint_dir(run_dir)}): the run stopped before its first one; {start_over}"
    )


def _restore(accelerator: Accelerator, path: Path) -> TrainerState:
    """Load one checkpoint. One without a manifest (an older LASER's) that fails to load
    counts as damaged; a verified one that fails is a real incompatibility and is raised."""
    verified = manifest.verify(path)
    if not verified and accelerator.is_main_process:
        log.warning(f"{path} has no {RunDir.MANIFEST} (an older LASER wrote it): unverified")
    try:
        accelerator.load_state(str(path))
        return TrainerState(**json.loads((path / TRAINER_STATE).read_text()))
    except Exception as error:
        if verified:
            raise LaserError(f"cannot load the intact checkpoint {path}: {error}") from error
        raise manifest.DamagedFile(f"{path} cannot be loaded: {error}") from None
