"""The library does what the CLI does: `run_recipe` leaves the run directory `laser run` leaves,
and `evaluate_run` (`laser eval`) reproduces the run's final validation exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from laser_core import evaluate_run, load_recipe, run_recipe
from laser_core.cli import main
from tests.downstream.conftest import DIGITS_RECIPE
from tests.helpers import logged

pytestmark = pytest.mark.slow

# digits: 359 val images, so one batch of 64 is what training validates on
RECIPE = (
    DIGITS_RECIPE.replace("metrics: [mse]", "metrics: [mse, psnr]")
    .replace("steps: 10, lr: 0.005, log_every: 5", "steps: 4, lr: 0.005, log_every: 2")
    .replace("epochs: 5, batch_size: 128", "epochs: 1, batch_size: 128, inputs: [pixels, codes]")
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same recipe run by `laser run` and by `run_recipe`, each from its own working
    directory into `run`, so that the recipe.yaml headers, which name the run, agree."""
    root = tmp_path_factory.mktemp("workflow")
    recipe = root / "digits.yaml"
    recipe.write_text(RECIPE)
    by_cli, by_python = root / "cli", root / "python"
    with pytest.MonkeyPatch.context() as patch:
        by_cli.mkdir()
        patch.chdir(by_cli)
        assert main(["run", str(recipe), "--run-dir", "run"]) == 0
        by_python.mkdir()
        patch.chdir(by_python)
        result = run_recipe(load_recipe(recipe), "run")
    assert result.run_dir == Path("run") and set(result.task) >= {"pixels/accuracy"}
    return by_cli / "run", by_python / "run"


def _files(run_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())


def _untimed(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not k.endswith("seconds")}


def test_run_recipe_leaves_the_run_directory_laser_run_leaves(runs):
    by_cli, by_python = runs
    assert _files(by_cli) == _files(by_python)
    assert "checkpoints/step-0000004/trainer.json" in _files(by_cli)
    for name in ("recipe.yaml", "plugins.json", "model.safetensors"):
        assert (by_cli / name).read_bytes() == (by_python / name).read_bytes(), name
    assert logged(by_cli) == logged(by_python)
    final = json.loads((by_cli / "metrics.json").read_text())
    assert _untimed(final) == _untimed(json.loads((by_python / "metrics.json").read_text()))
    assert final["step"] == 4 and final["val_examples"] == 64
    assert {"task/pixels/accuracy", "task/codes/accuracy"} <= set(final)


def test_default_eval_reproduces_the_final_validation_exactly(runs):
    _, run_dir = runs
    final = json.loads((run_dir / "metrics.json").read_text())
    validated = {k: v for k, v in final.items() if k != "step" and not k.startswith("task/")}
    result = evaluate_run(run_dir)
    assert result.metrics == validated  # exactly: the same 64 examples, the same weights
    assert (result.step, result.examples, result.split_examples) == (4, 64, 359)
    assert result.dataset["name"] == "digits" and result.weights == run_dir / "model.safetensors"
    whole = evaluate_run(run_dir, whole_split=True)
    assert whole.examples == 359 and whole.metrics["psnr"] != result.metrics["psnr"]
