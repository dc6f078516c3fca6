"""The run directory: everything needed to understand, resume, evaluate and export a run.

recipe.yaml        the fully resolved recipe (every default filled in)
plugins.json       the plugins and library versions that ran it, and its precision
metrics.jsonl      one JSON object per logged step (train) or validation (val), appended
metrics.json       the final validation metrics, flat {name: value}, with val_examples (how
                   many examples they cover) and the task's task/... numbers
model.safetensors  the final weights
manifest.json      sha256 sums of the files above but metrics.jsonl, and of run.json; see
                   manifest.py
run.json           the image shape the model was built for, so that it rebuilds without its
                   dataset, and a record of each resume, see resume.py
checkpoints/       resumable Accelerate states, see checkpoint.py
reconstructions/   a grid PNG per validation: originals above reconstructions
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from accelerate import Accelerator

from laser_core.errors import LaserError
from laser_core.plugin.registry import Registry
from laser_core.recipes.model import Recipe

log = logging.getLogger(__name__)


def default_run_dir(recipe: Recipe) -> Path:
    return Path("runs") / f"{recipe.stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder and rename it into place, so a
    crash leaves either the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, default_mode())
        with open(temporary, "rb") as stream:
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def default_mode(directory: bool = False) -> int:
    """What open() or mkdir() would have given: mkstemp and mkdtemp make private files and
    folders (0600, 0700), but run and export directories are shared with colleagues and tools
    just as what is written directly would be."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))


def write_recipe(run_dir: Path, recipe: Recipe) -> None:
    header = f"# resolved from {recipe.source}; `laser run {run_dir / 'recipe.yaml'}` reruns it\n"
    body = yaml.safe_dump(recipe.resolved(), sort_keys=False)
    atomic_write_text(run_dir / "recipe.yaml", header + body)


def write_plugin_versions(
    run_dir: Path, recipe: Recipe, registry: Registry, accelerator: Accelerator
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
        "load_failures": [{"plugin": str(f.provider), "error": f.error} for f in registry.failures],
    }
    atomic_write_text(run_dir / "plugins.json", json.dumps(info, indent=2) + "\n")


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
        self.path = run_dir / "metrics.jsonl"

    def append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as stream:
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


def read_final_metrics(run_dir: Path) -> dict[str, Any]:
    """metrics.json, {} when the run has none; a damaged one is an error naming it."""
    path = run_dir / "metrics.json"
    if not path.is_file():
        return {}
    try:
        metrics = json.loads(path.read_bytes())
    except ValueError:
        metrics = None
    if not isinstance(metrics, dict):
        raise LaserError(f"{path} is damaged (not a JSON object)")
    return metrics


def write_final_metrics(run_dir: Path, metrics: dict[str, float]) -> None:
    atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
