"""What ``laser run`` and ``laser eval`` do, as library functions: the CLI only parses their
arguments and prints their results, so Python does everything the command line does."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from accelerate import Accelerator, PartialState
from torch.utils.data import DataLoader

from laser_core.assembly.build import Autoencoder, build_component, build_metrics
from laser_core.recipes.model import Recipe
from laser_core.rundir.layout import RunDir, default_run_dir
from laser_core.rundir.providers import load_run_recipe
from laser_core.rundir.resume import check_resumable
from laser_core.runs.load import dataset_overrides, load_run
from laser_core.runs.tasks import run_task
from laser_core.training.evaluate import evaluate
from laser_core.training.train import train


@dataclass
class RunResult:
    """A finished ``laser run``: validation before and after training (``before`` is empty
    for a resumed run), the task's numbers (empty without a task block, and on processes other
    than the main one) and the trained model. metrics.json holds ``after`` and the task's
    numbers as ``task/<key>``."""

    run_dir: Path
    recipe: Recipe
    model: Autoencoder
    before: dict[str, float]
    after: dict[str, float]
    task: dict[str, float]


def run_recipe(recipe: Recipe, run_dir: str | os.PathLike[str] | None = None) -> RunResult:
    """Train ``recipe`` into ``run_dir`` (default ``runs/<recipe>-<timestamp>``), then run its
    ``task:`` block on the main process: what ``laser run`` does."""
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(recipe)
    return _train_then_task(recipe, run_dir, resume=False)


def resume_run(
    run_dir: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = ()
) -> RunResult:
    """Continue the run in ``run_dir`` from its newest intact checkpoint, its recorded recipe
    changed by ``overrides`` (those rundir/resume.py allows, e.g. ``["train.steps=2000"]``), then
    run its task: what ``laser run --resume`` does."""
    run_dir = Path(run_dir)
    check_resumable(run_dir)  # before its recipe is parsed
    recipe = load_run_recipe(run_dir, overrides)
    return _train_then_task(recipe, run_dir, resume=True)


def _train_then_task(recipe: Recipe, run_dir: Path, resume: bool) -> RunResult:
    if recipe.task is not None:
        build_component("tasks", recipe.task)  # a broken task fails now, not after training
    trained = train(recipe, run_dir, resume=resume)
    task = {}
    if recipe.task is not None and PartialState().is_main_process:
        task = run_task(recipe, run_dir)
    return RunResult(run_dir, recipe, trained.model, trained.before, trained.after, task)


@dataclass
class EvalResult:
    """What ``laser eval`` evaluated and found: the weights (and the training step they are
    from, when the run recorded it), the dataset block, the split, how many of its examples
    were evaluated, and the metrics, with ``val_examples`` as in metrics.json."""

    weights: Path
    step: int | None
    dataset: dict[str, Any]
    split: str
    split_examples: int
    metrics: dict[str, float]

    @property
    def examples(self) -> int:
        return int(self.metrics["val_examples"])

    def to_json(self) -> dict[str, Any]:
        return {
            "weights": str(self.weights),
            "step": self.step,
            "dataset": self.dataset,
            "split": self.split,
            "examples": self.examples,
            "split_examples": self.split_examples,
            "metrics": self.metrics,
        }


def evaluate_run(
    run_dir: str | os.PathLike[str],
    overrides: list[str] | tuple[str, ...] = (),
    dataset: dict[str, Any] | None = None,
    whole_split: bool = False,
) -> EvalResult:
    """Validation metrics of a finished run's final weights: what ``laser eval`` does.

    By default on the examples the run's final validation covered, the first
    ``train.eval_batches`` batches (per process), so that the numbers match metrics.json;
    ``whole_split`` evaluates the whole validation split. ``dataset`` replaces the run's
    data block, e.g. ``{"name": "image-folder", "path": "photos"}``; ``overrides`` change
    the recipe first, e.g. ``["data.val_patches=1024"]``.
    """
    run_dir = Path(run_dir)
    replaced = dataset_overrides(dataset) if dataset is not None else []
    run = load_run(run_dir, [*replaced, *overrides])
    recipe = run.recipe
    accelerator = Accelerator(mixed_precision=recipe.train.precision)
    loader = accelerator.prepare(DataLoader(run.data.val, batch_size=recipe.data.config.batch_size))
    model = accelerator.prepare(run.model)
    metrics = evaluate(
        model,
        loader,
        build_metrics(recipe, run.context),
        accelerator,
        None if whole_split else recipe.train.eval_batches,
    )
    files = RunDir(run_dir)
    return EvalResult(
        weights=files.model_safetensors,
        step=files.read_final_metrics().get("step"),
        dataset=recipe.data.resolved(),
        split="val",
        split_examples=len(run.data.val),
        metrics=metrics,
    )
