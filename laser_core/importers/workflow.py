"""``laser import`` from Python: a pretrained autoencoder in, a run directory out."""

from __future__ import annotations

from pathlib import Path

from laser_core.importers.diffusers import read_diffusers
from laser_core.importers.run_writer import write_imported_run
from laser_core.importers.taming import read_taming
from laser_core.recipes.model import Recipe


def import_taming(
    checkpoint: Path, config: Path, out: Path, overrides: list[str] | tuple[str, ...] = ()
) -> Recipe:
    """A taming-transformers VQGAN (Lightning .ckpt and its training YAML) as run ``out``."""
    return write_imported_run(read_taming(checkpoint, config), out, overrides)


def import_diffusers(
    folder: Path, out: Path, overrides: list[str] | tuple[str, ...] = ()
) -> Recipe:
    """A diffusers VQModel or AutoencoderKL folder (``save_pretrained``) as run ``out``."""
    return write_imported_run(read_diffusers(folder), out, overrides)
