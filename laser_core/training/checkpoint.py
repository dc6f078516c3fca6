"""Resumable checkpoints: ``checkpoints/step-000500/`` holds the Accelerate state (weights as
safetensors, optimizer, scheduler, every process's RNG) and ``trainer.json``.

A checkpoint is written under a temporary name and renamed when complete, so a folder named
``step-*`` is always whole: a crash mid-save leaves the previous checkpoint the latest.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from accelerate import Accelerator

from laser_core.errors import LaserError

PREFIX = "step-"
TRAINER_STATE = "trainer.json"


@dataclass
class TrainerState:
    """Where the loop stands: optimizer steps done and micro-batches consumed."""

    step: int = 0
    batches_seen: int = 0


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def path_for(run_dir: Path, step: int) -> Path:
    return checkpoint_dir(run_dir) / f"{PREFIX}{step:07d}"


def save(accelerator: Accelerator, run_dir: Path, state: TrainerState, keep: int) -> Path:
    """Save on every process (each writes its RNG state); rename into place on the main one
    once every process has finished writing (save_state itself ends without a barrier)."""
    final = path_for(run_dir, state.step)
    partial = final.with_name(f".partial-{final.name}")
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial), safe_serialization=True)
    accelerator.wait_for_everyone()  # every rank's RNG state is in before the rename
    if accelerator.is_main_process:
        (partial / TRAINER_STATE).write_text(json.dumps(asdict(state)))
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
    found = [p for p in folder.iterdir() if p.name.startswith(PREFIX) and p.is_dir()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def latest(run_dir: Path) -> Path | None:
    found = complete_checkpoints(run_dir)
    return found[-1] if found else None


def load(accelerator: Accelerator, run_dir: Path) -> TrainerState:
    """Restore the latest whole checkpoint into the prepared objects."""
    path = latest(run_dir)
    if path is None:
        raise LaserError(
            f"{run_dir} has no complete checkpoint to resume from "
            f"(looked in {checkpoint_dir(run_dir)})"
        )
    accelerator.load_state(str(path))
    return TrainerState(**json.loads((path / TRAINER_STATE).read_text()))
