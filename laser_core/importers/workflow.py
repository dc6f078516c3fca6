"""``laser import`` from Python: a pretrained autoencoder in, a run directory out."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from laser_core.importers.diffusers import read_diffusers
from laser_core.importers.run_writer import ImportedModel, write_imported_run
from laser_core.importers.taming import read_taming
from laser_core.recipes.model import Recipe
from laser_core.rundir.lock import lock_run_dir
from laser_core.runs.load import dataset_overrides

Overrides = list[str] | tuple[str, ...]


def import_taming(
    checkpoint: str | os.PathLike[str],
    config: str | os.PathLike[str],
    out: str | os.PathLike[str],
    overrides: Overrides = (),
    dataset: dict[str, Any] | None = None,
) -> Recipe:
    """A taming-transformers VQModel or GumbelVQ (Lightning .ckpt and its training YAML) as
    run ``out``; ``dataset``, e.g. ``{"name": "image-folder", ...}``, is recorded as its data
    block (by default it has none, and each command that reads images is given one)."""
    return _write(read_taming(Path(checkpoint), Path(config)), Path(out), _with(dataset, overrides))


def import_diffusers(
    folder: str | os.PathLike[str],
    out: str | os.PathLike[str],
    overrides: Overrides = (),
    dataset: dict[str, Any] | None = None,
) -> Recipe:
    """A diffusers VQModel or AutoencoderKL folder (``save_pretrained``) as run ``out``."""
    return _write(read_diffusers(Path(folder)), Path(out), _with(dataset, overrides))


def _write(imported: ImportedModel, out: Path, overrides: list[str]) -> Recipe:
    """Write the run under ``out``'s lock; a failed import leaves no folder it created."""
    created = not out.exists()
    try:
        with lock_run_dir(out):
            return write_imported_run(imported, out, overrides)
    except BaseException:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _with(dataset: dict[str, Any] | None, overrides: Overrides) -> list[str]:
    return [*(dataset_overrides(dataset) if dataset is not None else []), *overrides]
