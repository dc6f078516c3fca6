"""Write an imported autoencoder as a run directory that every command reads like a trained one.

An importer supplies the recipe blocks of the equivalent LASER model and the source's weights
already renamed to LASER's keys, and the image shape the source was built for; this module
builds the model from the recipe for that shape, checks that the weights cover it exactly, and
writes recipe.yaml, plugins.json, run.json, model.safetensors and imported.json (where the
weights came from). The recipe has no data block unless the user gives one: each command that
reads images is given its dataset.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import Accelerator
from safetensors.torch import save_file

from laser_core.errors import LaserError
from laser_core.plugin.contracts import BuildContext
from laser_core.plugin.registry import default_registry
from laser_core.recipes.model import Recipe, load_recipe
from laser_core.runs import layout, manifest
from laser_core.runs.resume import RUN_INFO, start_record
from laser_core.training.build import build_model

SEALED = ("recipe.yaml", "plugins.json", RUN_INFO, "model.safetensors", "imported.json")
"""The files of an imported run directory that its manifest covers."""


@dataclass
class ImportedModel:
    """What an importer found: recipe blocks, LASER-keyed weights, the image shape the source
    was built for, and notes for the record: ``notes`` say where the LASER model behaves
    differently from the source, and go into recipe.yaml's header and imported.json."""

    source: Path
    library: str
    blocks: dict[str, Any]
    weights: dict[str, torch.Tensor]
    images: BuildContext
    ignored: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def write_imported_run(
    imported: ImportedModel, run_dir: Path, overrides: list[str] | tuple[str, ...] = ()
) -> Recipe:
    """Build the LASER model for ``imported``, load its weights and write ``run_dir``."""
    if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
        raise LaserError(f"{run_dir} already exists and is not an empty folder; choose --out")
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / f"{imported.source.stem}.yaml"
        source.write_text(yaml.safe_dump(imported.blocks, sort_keys=False))
        recipe = load_recipe(source, overrides, data_optional=True)
    model, _ = build_model(recipe, imported.images)
    _check_coverage(imported, model)
    state = model.state_dict()
    state.update(imported.weights)
    model.load_state_dict(state)
    run_dir.mkdir(parents=True, exist_ok=True)
    header = (
        f"# imported from {imported.library} weights {imported.source} by `laser import`;\n"
        "# see imported.json. "
        + ("" if recipe.data else "No dataset: give one to each command that reads images.")
        + "\n"
        + "".join(
            textwrap.fill(note, 96, initial_indent="# ", subsequent_indent="#   ") + "\n"
            for note in imported.notes
        )
    )
    body = yaml.safe_dump(recipe.resolved(), sort_keys=False)
    layout.atomic_write_text(run_dir / "recipe.yaml", header + body)
    layout.write_plugin_versions(run_dir, recipe, default_registry(), Accelerator(cpu=True))
    start_record(run_dir, imported.images)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    layout.atomic_write(run_dir / "model.safetensors", lambda p: save_file(tensors, str(p)))
    record = {
        "library": imported.library,
        "source": str(imported.source.resolve()),
        "sha256": _sha256(imported.source),
        "ignored_keys": imported.ignored,
        **imported.metadata,
        **({"notes": imported.notes} if imported.notes else {}),
    }
    layout.atomic_write_text(run_dir / "imported.json", json.dumps(record, indent=2) + "\n")
    manifest.seal(run_dir, [*SEALED])  # last: the imported run is complete and verifiable
    return recipe


def _check_coverage(imported: ImportedModel, model: torch.nn.Module) -> None:
    """Every imported key must land on a tensor of its shape, and every trainable weight of
    the LASER model must come from the source; buffers (gumbel's step, vq's usage counters)
    may keep their initial values."""
    state = model.state_dict()
    unknown = sorted(k for k in imported.weights if k not in state)
    misshapen = sorted(
        f"{k} {tuple(v.shape)} -> {tuple(state[k].shape)}"
        for k, v in imported.weights.items()
        if k in state and v.shape != state[k].shape
    )
    if unknown or misshapen:
        raise LaserError(
            f"{imported.source}: weights that do not map onto the LASER model: "
            + "; ".join([*(f"{k} (no such weight)" for k in unknown[:20]), *misshapen[:20]])
        )
    missing = sorted(name for name, _ in model.named_parameters() if name not in imported.weights)
    if missing:
        raise LaserError(
            f"{imported.source}: the LASER model needs weights the source does not have: "
            + ", ".join(missing[:20])
        )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if file.is_file():
            with file.open("rb") as stream:
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()
