"""Every recipe in recipes/ runs: `laser run` for two steps at toy size, with its own components.

A recipe is every YAML file under recipes/ (the bases they extend ship in the package). The
toy overrides shrink data and steps but keep each block, so a recipe whose
plugin, keys or wiring broke fails here. No pretrained weights can be had in tests: LPIPS, as a
loss or a metric, runs on a RANDOMLY INITIALISED backbone (the pipeline, not LPIPS), and
Inception-based metrics (fid, kid) are left out.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from laser_core.cli.main import main
from laser_core.recipes.model import Recipe, load_recipe
from tests.helpers import RECIPES, shipped_recipes

pytestmark = pytest.mark.slow

NEEDS_INCEPTION = {"fid", "kid"}


def toy_overrides(recipe: Recipe) -> list[str]:
    """Overrides that make ``recipe`` run in seconds on a CPU while keeping its components."""
    overrides = ["train.steps=2", "train.eval_batches=1"]
    data = recipe.data.config
    # Datasets drawn at a chosen size shrink to one batch each; fixed ones (digits) stay whole.
    overrides += [
        f"data.{key}={data.batch_size}"
        for key in ("train_patches", "val_patches")
        if key in type(data).model_fields
    ]
    if recipe.encoder.name == "vqgan":  # GPU-sized tokenizers: the same network, narrower
        overrides += ["encoder.ch=32", "decoder.ch=32", "data.size=32", "data.batch_size=2"]
        overrides += ["encoder.num_res_blocks=1", "decoder.num_res_blocks=1", "train.precision=no"]
        overrides.append("bottleneck.kmeans_init=false")  # k-means++ seeds codes one by one
    if recipe.encoder.name == "gdn-analysis":  # learned codecs: the same transforms, narrower
        overrides += ["encoder.channels=8", "encoder.latent_dim=8", "decoder.channels=8"]
        overrides += ["data.size=64", "data.batch_size=2"]
    if recipe.bottleneck.name == "hyperprior":
        overrides.append("bottleneck.hyper_channels=8")
    if recipe.losses.perceptual:
        overrides.append("losses.perceptual_backbone=random")
    if recipe.discriminator is not None:
        overrides.append("discriminator.start_step=1")  # so both adversarial steps run
    if recipe.task is not None and "epochs" in type(recipe.task.config).model_fields:
        overrides.append("task.epochs=1")
    metrics = []
    for metric in recipe.metrics:
        block = metric.resolved()
        if block["name"] in NEEDS_INCEPTION:
            continue
        if block["name"] == "lpips":
            block["backbone"] = "random"
        metrics.append(block)
    overrides.append(f"metrics={json.dumps(metrics)}")
    return overrides


@pytest.mark.parametrize("path", shipped_recipes(), ids=lambda p: str(p.relative_to(RECIPES)))
def test_recipe_runs_briefly(path: Path, tmp_path, capsys):
    run_dir = tmp_path / "run"
    recipe = load_recipe(path)
    overrides = toy_overrides(recipe)
    assert main(["run", str(path), *overrides, "--run-dir", str(run_dir)]) == 0, (
        capsys.readouterr().err
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["step"] == 2
    assert "psnr" in metrics, "every recipe reports validation PSNR"
    numbers = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
    assert all(math.isfinite(v) for v in numbers.values()), numbers
    assert (run_dir / "model.safetensors").is_file()
    if recipe.task is not None:
        assert any(key.startswith("task/") for key in metrics), "the task block ran"
