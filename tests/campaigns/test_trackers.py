"""train.trackers: TensorBoard and MLflow receive what metrics.jsonl holds, read back with
their own readers; a tracker whose package is missing is a located recipe error."""

from __future__ import annotations

import json

import pytest

from laser_core.errors import RecipeError
from laser_core.recipes.model import load_recipe
from laser_core.training.train import train
from tests.helpers import TINY_RECIPE

TRACKED = TINY_RECIPE.replace(
    "train: {steps: 6, lr: 0.005, log_every: 1, eval_batches: 1}",
    "train: {steps: 4, lr: 0.005, log_every: 2, eval_every: 2, eval_batches: 1,\n"
    "        trackers: [tensorboard, mlflow]}",
)


def test_tensorboard_and_mlflow_log_the_metrics_hyperparameters_and_grids(
    write_recipe, tmp_path, monkeypatch
):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    run_dir = tmp_path / "run"
    train(load_recipe(write_recipe(TRACKED)), run_dir)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    val = {r["step"]: r["psnr"] for r in records if r["split"] == "val"}
    loss = {r["step"]: r["loss"] for r in records if r["split"] == "train"}
    val_steps = [r["step"] for r in records if r["split"] == "val"]
    assert val_steps == [0, 2, 4] and sorted(loss) == [2, 4]

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events_dir,) = (run_dir / "trackers").glob("recipe")
    events = EventAccumulator(str(events_dir), size_guidance={"images": 0}).Reload()
    assert {e.step: e.value for e in events.Scalars("val/psnr")} == pytest.approx(val)
    assert {e.step: e.value for e in events.Scalars("train/loss")} == pytest.approx(loss)
    assert [e.step for e in events.Images("reconstructions")] == val_steps
    assert events.Images("reconstructions")[0].width > events.Images("reconstructions")[0].height

    from mlflow import MlflowClient

    client = MlflowClient((run_dir / "trackers" / "mlruns").resolve().as_uri())
    (experiment,) = client.search_experiments(filter_string="name = 'recipe'")
    (run,) = client.search_runs([experiment.experiment_id])
    history = client.get_metric_history(run.info.run_id, "val/psnr")
    assert {m.step: m.value for m in history} == pytest.approx(val)
    assert run.data.params["bottleneck.codebook_size"] == "16"
    assert run.data.params["train.trackers"] == json.dumps(
        [{"name": "tensorboard"}, {"name": "mlflow"}]
    )
    assert run.info.run_name == "run"


def test_a_missing_tracker_package_is_a_located_error_naming_the_extra(write_recipe):
    path = write_recipe(
        TINY_RECIPE.replace("eval_batches: 1}", "eval_batches: 1, trackers: [aim]}")
    )
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    assert f"{path.resolve()}:7: train.trackers:" in str(error.value)
    assert "pip install 'laser[aim]'" in str(error.value)


def test_an_unknown_tracker_lists_the_known_ones(write_recipe):
    path = write_recipe(TINY_RECIPE.replace("eval_batches: 1}", "eval_batches: 1, trackers: [tb]}"))
    with pytest.raises(RecipeError, match=r"unknown tracker 'tb'.*tensorboard, wandb, mlflow"):
        load_recipe(path)
