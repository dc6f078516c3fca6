"""The run directory, whose files :class:`RunDir` names, and how LASER writes and hashes them:
atomically (a crash leaves the old file or the new one), sha256 read in chunks."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
import yaml
from safetensors.torch import save_file

from laser_core.errors import LaserError, writing
from laser_core.files import atomic_write, atomic_write_text
from laser_core.plugin.registry import Registry
from laser_core.recipes.model import Recipe
from laser_core.rundir.lock import LOCK_FILE

if TYPE_CHECKING:  # accelerate takes a tenth of a second to import; laser validate needs none
    from accelerate import Accelerator

log = logging.getLogger(__name__)


class RunDir:
    """A run directory, every file in it named here once.

    recipe.yaml          the fully resolved recipe (every default filled in)
    plugins.json         the plugins and library versions that ran it, and its precision
    metrics.jsonl        one JSON object per logged step (train) or validation (val), appended
    metrics.json         the final validation metrics, flat {name: value}, with val_examples
                         (how many examples they cover) and the task's task/... numbers
    model.safetensors    the final weights
    manifest.json        sha256 sum and size of recipe.yaml, plugins.json, run.json,
                         metrics.json, model.safetensors and imported.json, written last; see
                         manifest.py
    run.json             the image shape the model was built for, so that it rebuilds without
                         its dataset, and a record of each resume; see resume.py
    checkpoints/         step-NNNNNNN/: resumable Accelerate states, each with its own
                         manifest.json; see checkpoint.py
    reconstructions/     step-NNNNNNN.png: a grid per validation, originals above
                         reconstructions
    trackers/            what the experiment trackers of train.trackers log, offline
    priors.safetensors   entropy models counted by `laser priors`, for `laser compress`
    imported.json        an imported run's source, its sha256 and the keys left out
    .lock                locked by the process writing the run, naming it; see lock.py
    priors/              what `laser prior` trains over the run's codes: codes.safetensors
                         (the run's tokens, exported once) and NAME/ for each trained prior
                         (prior.json, model.safetensors, metrics.json, samples.png,
                         manifest.json, checkpoints/); see coding/trained_priors.py
    """

    RECIPE = "recipe.yaml"
    PLUGINS = "plugins.json"
    METRICS_LOG = "metrics.jsonl"
    METRICS = "metrics.json"
    WEIGHTS = "model.safetensors"
    MANIFEST = "manifest.json"
    RUN_INFO = "run.json"
    CHECKPOINTS = "checkpoints"
    RECONSTRUCTIONS = "reconstructions"
    TRACKERS = "trackers"
    PRIORS = "priors.safetensors"
    IMPORTED = "imported.json"
    LOCK = LOCK_FILE
    TRAINED_PRIORS = "priors"

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.recipe_yaml = self.path / self.RECIPE
        self.plugins_json = self.path / self.PLUGINS
        self.metrics_jsonl = self.path / self.METRICS_LOG
        self.metrics_json = self.path / self.METRICS
        self.model_safetensors = self.path / self.WEIGHTS
        self.manifest_json = self.path / self.MANIFEST
        self.run_json = self.path / self.RUN_INFO
        self.checkpoints = self.path / self.CHECKPOINTS
        self.reconstructions = self.path / self.RECONSTRUCTIONS
        self.trackers = self.path / self.TRACKERS
        self.priors_safetensors = self.path / self.PRIORS
        self.imported_json = self.path / self.IMPORTED
        self.trained_priors = self.path / self.TRAINED_PRIORS

    def grid(self, step: int) -> Path:
        """The reconstruction grid of the validation at ``step``."""
        return self.reconstructions / f"step-{step:07d}.png"

    def write_recipe(self, recipe: Recipe, header: str | None = None) -> None:
        """recipe.yaml: ``header`` (comment lines, each ending in a newline; by default where
        the recipe came from and how to rerun it), then the resolved recipe."""
        if header is None:
            header = f"# resolved from {recipe.source}; `laser run {self.recipe_yaml}` reruns it\n"
        body = yaml.safe_dump(recipe.resolved(), sort_keys=False)
        atomic_write_text(self.recipe_yaml, header + body)

    def write_plugin_versions(
        self, recipe: Recipe, registry: Registry, accelerator: Accelerator
    ) -> None:
        """Where each component came from, library versions, and how the run was launched:
        precision ``null`` in a recipe means whatever ``accelerate launch`` set, recorded here."""
        used = recipe.map_blocks(lambda block: _provenance(block.component))
        libraries = {name: _version(name) for name in ("torch", "accelerate", "pydantic", "laser")}
        runtime = {
            "mixed_precision": accelerator.mixed_precision,
            "num_processes": accelerator.num_processes,
            "device": accelerator.device.type,
        }
        info = {
            "components": used,
            "libraries": libraries,
            "runtime": runtime,
            "load_failures": [
                {"plugin": str(f.provider), "error": f.error} for f in registry.failures
            ],
        }
        atomic_write_text(self.plugins_json, json.dumps(info, indent=2) + "\n")

    def write_run_info(self, info: dict[str, Any]) -> None:
        """run.json, as resume.py builds it; the caller seals it."""
        atomic_write_text(self.run_json, json.dumps(info, indent=2) + "\n")

    def write_weights(self, state_dict: dict[str, torch.Tensor]) -> None:
        """model.safetensors from a model's state dict, as contiguous CPU tensors."""
        tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
        atomic_write(self.model_safetensors, lambda p: save_file(tensors, str(p)))

    def read_final_metrics(self) -> dict[str, Any]:
        """metrics.json, {} when the run has none; a damaged one is an error naming it."""
        if not self.metrics_json.is_file():
            return {}
        try:
            metrics = json.loads(self.metrics_json.read_bytes())
        except ValueError:
            metrics = None
        if not isinstance(metrics, dict):
            raise LaserError(f"{self.metrics_json} is damaged (not a JSON object)")
        return metrics

    def write_final_metrics(self, metrics: dict[str, float]) -> None:
        atomic_write_text(self.metrics_json, json.dumps(metrics, indent=2) + "\n")


class ImageShape(Protocol):
    """The images a model is built for: a dataset's DataSplits, or the shape a run directory
    recorded in run.json when it trained (a BuildContext), so that a run opens without its
    dataset."""

    @property
    def image_channels(self) -> int: ...

    @property
    def image_size(self) -> int: ...


def default_run_dir(recipe: Recipe) -> Path:
    """``runs/<recipe>-<timestamp>``, where ``laser run`` writes without --run-dir."""
    return Path("runs") / f"{recipe.stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def sha256(path: Path) -> str:
    """The sha256 of a file, or of every file under a folder in sorted order, as hex; read
    in 1 MiB chunks so weights of any size fit in memory."""
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
        if file.is_file():
            with open(file, "rb") as stream:
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def _provenance(component: Any) -> dict[str, str]:
    provider = component.provider
    return {
        "name": component.name,
        "plugin": provider.plugin,
        "distribution": provider.distribution,
        "version": provider.version,
    }


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


class MetricsLog:
    """metrics.jsonl, appended one line per logged step and flushed, so a crash loses at most
    the line being written; a resumed run drops that torn line and what came after its
    checkpoint, so each (step, split) appears once."""

    def __init__(self, run_dir: Path):
        self.path = RunDir(run_dir).metrics_jsonl

    def append(self, record: dict[str, Any]) -> None:
        with writing(self.path), open(self.path, "a") as stream:
            stream.write(json.dumps(record) + "\n")

    def truncate_after(self, step: int) -> None:
        """Drop records past ``step``: a resumed run rewrites them."""
        if not self.path.exists():
            return
        kept = [line for line, record in self._lines() if record["step"] <= step]
        atomic_write_text(self.path, "".join(line + "\n" for line in kept))

    def records(self) -> list[dict[str, Any]]:
        return [record for _, record in self._lines()]

    def val_at(self, step: int) -> dict[str, float]:
        """The validation metrics logged at ``step``, {} if none were."""
        found = [r for r in self.records() if r["split"] == "val" and r["step"] == step]
        return {k: v for k, v in found[-1].items() if k not in ("step", "split")} if found else {}

    def _lines(self) -> list[tuple[str, dict[str, Any]]]:
        """Each line with its record. A last line without its newline that does not parse was
        torn by a kill while it was written: dropped with a warning. Any other bad line is
        damage, refused by its line number."""
        if not self.path.exists():
            return []
        lines = self.path.read_bytes().split(b"\n")
        parsed = []
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            record = _metrics_record(raw)
            if record is not None:
                parsed.append((raw.decode(), record))
            elif number == len(lines):
                log.warning(f"{self.path}: dropped its last line, torn by a kill mid-write")
            else:
                raise LaserError(
                    f"{self.path}:{number} is damaged (not a JSON metrics record); delete that "
                    "line to resume"
                )
        return parsed


def _metrics_record(raw: bytes) -> dict[str, Any] | None:
    try:
        record = json.loads(raw)
    except ValueError:
        return None
    if isinstance(record, dict) and isinstance(record.get("step"), int) and "split" in record:
        return record
    return None
