"""Experiment trackers through Accelerate (``train.trackers``): TensorBoard, Weights & Biases,
MLflow, Trackio and Aim receive the scalars of ``metrics.jsonl`` (``train/loss``,
``val/psnr``, ...), the resolved recipe as hyperparameters, and the reconstruction grids where
the tracker takes images. Everything stays under ``RUN_DIR/trackers`` and offline unless a
tracker's options say otherwise. Only the main process writes (Accelerate's rule)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration
from PIL import Image

from laser_core.rundir.layout import RunDir


def accelerator_kwargs(trackers: list[dict[str, Any]], run_dir: Path) -> dict[str, Any]:
    """What ``Accelerator(...)`` needs for ``trackers``; nothing when there are none."""
    if not trackers:
        return {}
    return {
        "log_with": [t["name"] for t in trackers],
        "project_config": ProjectConfiguration(
            project_dir=str(run_dir), logging_dir=str(RunDir(run_dir).trackers)
        ),
    }


def start(accelerator: Accelerator, recipe: Any, run_dir: Path) -> None:
    """Start every tracker with the resolved recipe as hyperparameters, offline defaults
    filled in under the tracker's options."""
    trackers = recipe.train.trackers
    if not trackers:
        return
    folder = RunDir(run_dir).trackers
    options = {t["name"]: {k: v for k, v in t.items() if k != "name"} for t in trackers}
    init_kwargs = {name: _defaults(name, folder, run_dir.name) | o for name, o in options.items()}
    if "mlflow" in init_kwargs and accelerator.is_main_process:
        _mlflow_store(init_kwargs["mlflow"].pop("tracking_uri", None), folder)
    accelerator.init_trackers(recipe.stem, hyperparameters(recipe.resolved()), init_kwargs)


def hyperparameters(resolved: dict[str, Any]) -> dict[str, Any]:
    """The recipe flattened to dotted keys with scalar values, which every tracker takes."""
    flat: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif isinstance(value, bool | int | float | str):
            flat[prefix] = value
        else:  # lists and null as text: TensorBoard's hparams refuse them
            flat[prefix] = json.dumps(value)

    walk("", resolved)
    return flat


class TrackedLog:
    """metrics.jsonl plus the trackers: each record goes to both, each validation's
    reconstruction grid to the trackers that take images."""

    def __init__(self, metrics_log: Any, accelerator: Accelerator, run_dir: Path):
        self.metrics_log, self.accelerator, self.run_dir = metrics_log, accelerator, run_dir

    def append(self, record: dict[str, Any]) -> None:
        self.metrics_log.append(record)
        if not self.accelerator.trackers:
            return
        step, split = record["step"], record["split"]
        scalars = {
            f"{split}/{k}": v
            for k, v in record.items()
            if k not in {"step", "split"} and isinstance(v, int | float)
        }
        self.accelerator.log(scalars, step=step)
        grid = RunDir(self.run_dir).grid(step)
        if split == "val" and grid.is_file():
            self._log_image(grid, step)

    def _log_image(self, path: Path, step: int) -> None:
        image = Image.open(path).convert("RGB")
        for tracker in self.accelerator.trackers:
            if tracker.name == "tensorboard":
                pixels = np.asarray(image)[None]
                tracker.log_images({"reconstructions": pixels}, step=step, dataformats="NHWC")
            elif tracker.name == "aim":
                tracker.log_images({"reconstructions": image}, step=step)
            elif hasattr(tracker, "log_images"):
                tracker.log_images({"reconstructions": [image]}, step=step)


def _defaults(name: str, folder: Path, run_name: str) -> dict[str, Any]:
    if name == "wandb":
        return {"mode": "offline", "dir": str(folder), "name": run_name}
    if name == "mlflow":
        return {"run_name": run_name, "logging_dir": str(folder / "mlflow-artifacts")}
    if name == "trackio":
        return {"name": run_name}
    return {}


def _mlflow_store(uri: str | None, folder: Path) -> None:
    """MLflow's store: the recipe's ``tracking_uri``, else a SQLite file in the run's tracker
    folder, or MLflow's file store where SQLite's driver (SQLAlchemy, in full MLflow but not
    mlflow-skinny) is missing."""
    import mlflow

    folder.mkdir(parents=True, exist_ok=True)
    if uri is None and importlib.util.find_spec("sqlalchemy") is not None:
        uri = f"sqlite:///{folder / 'mlflow.db'}"
    if uri is None:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        uri = (folder / "mlruns").resolve().as_uri()
    mlflow.set_tracking_uri(uri)
