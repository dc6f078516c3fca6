"""Runs to compare, read from run or sweep directories: each run's resolved recipe, final
(or, while it trains, latest) validation metrics, its logged curves and latest grid."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from laser_core.campaigns.status import is_finished
from laser_core.errors import LaserError
from laser_core.rundir.layout import MetricsLog, RunDir


@dataclass
class RunRecord:
    label: str
    path: Path
    state: str  # done, training (not finished yet), failed
    recipe: dict[str, Any]  # flattened to dotted keys
    final: dict[str, float]
    records: list[dict[str, Any]]

    @property
    def grid(self) -> Path | None:
        grids = sorted(RunDir(self.path).reconstructions.glob("step-*.png"))
        return grids[-1] if grids else None


def collect(paths: list[Path]) -> list[RunRecord]:
    """Runs in the order given; a sweep directory contributes its runs in sweep order."""
    found: list[tuple[Path, str | None]] = []
    for path in paths:
        if RunDir(path).recipe_yaml.is_file():
            found.append((path, None))
        elif (path / "status.json").is_file():
            states = json.loads((path / "status.json").read_text())["runs"]
            found += [(path / "runs" / name, s["state"]) for name, s in states.items()]
        elif path.is_dir() and any(path.glob(f"*/{RunDir.RECIPE}")):
            found += [(p.parent, None) for p in sorted(path.glob(f"*/{RunDir.RECIPE}"))]
        else:
            raise LaserError(f"{path} is neither a run directory nor a sweep directory")
    found = [(p, s) for p, s in found if RunDir(p).recipe_yaml.is_file()]
    if not found:
        raise LaserError("no runs with results to compare yet")
    labels = _labels([p for p, _ in found])
    return [_read(path, label, state) for (path, state), label in zip(found, labels, strict=True)]


def _read(path: Path, label: str, sweep_state: str | None) -> RunRecord:
    records = MetricsLog(path).records()
    finished = is_finished(path)
    if finished:
        final = RunDir(path).read_final_metrics()
    else:
        val = [r for r in records if r["split"] == "val"]
        final = {k: v for k, v in val[-1].items() if k != "split"} if val else {}
    state = "done" if finished else ("failed" if sweep_state == "failed" else "training")
    recipe = flatten(yaml.safe_load(RunDir(path).recipe_yaml.read_text()))
    return RunRecord(label, path, state, recipe, final, records)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out |= flatten(sub, f"{prefix}.{key}" if prefix else str(key))
        return out
    return {prefix: value}


def _labels(paths: list[Path]) -> list[str]:
    """Folder names, with the sweep's (or parent's) name where two coincide."""
    names = [p.name for p in paths]
    parents = [p.parent.parent if p.parent.name == "runs" else p.parent for p in paths]
    return [
        f"{parent.name}/{name}" if names.count(name) > 1 else name
        for parent, name in zip(parents, names, strict=True)
    ]
