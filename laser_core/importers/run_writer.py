"""Write an imported autoencoder as a run directory that every command reads like a trained one.

An importer supplies the recipe blocks of the equivalent LASER model and the source's weights
already renamed to LASER's keys, and the image shape the source was built for; this module
builds the model from the recipe for that shape, checks that the weights cover it exactly, and
writes recipe.yaml, plugins.json, run.json, model.safetensors, imported.json (where the
weights came from) and an empty metrics.json (finished, nothing measured yet). The recipe has
no data block unless the user gives one: each command that reads images is given its dataset.
"""

from __future__ import annotations

import json
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from accelerate import Accelerator

from laser_core.assembly.build import build_model
from laser_core.errors import LaserError
from laser_core.files import atomic_write_text
from laser_core.plugin.contracts import BuildContext
from laser_core.plugin.registry import default_registry
from laser_core.recipes.model import Recipe, load_recipe
from laser_core.rundir import manifest
from laser_core.rundir.layout import RunDir, sha256
from laser_core.rundir.resume import start_record

SEALED = (
    RunDir.RECIPE,
    RunDir.PLUGINS,
    RunDir.RUN_INFO,
    RunDir.WEIGHTS,
    RunDir.IMPORTED,
    RunDir.METRICS,
)
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
    if run_dir.exists() and (
        not run_dir.is_dir() or any(p.name != RunDir.LOCK for p in run_dir.iterdir())
    ):
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
    files = RunDir(run_dir)
    files.write_recipe(recipe, header)
    files.write_plugin_versions(recipe, default_registry(), Accelerator(cpu=True))
    start_record(run_dir, imported.images)
    files.write_weights(model.state_dict())
    record = {
        "library": imported.library,
        "source": str(imported.source.resolve()),
        "sha256": sha256(imported.source),
        "ignored_keys": imported.ignored,
        **imported.metadata,
        **({"notes": imported.notes} if imported.notes else {}),
    }
    atomic_write_text(files.imported_json, json.dumps(record, indent=2) + "\n")
    files.write_final_metrics({})  # finished; `laser eval` measures it
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
