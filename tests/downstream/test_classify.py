"""The classify task, run by `laser run` after training: a classifier on digits latents and
codes beats chance by far, with the pixel baseline reported beside it; codes enter a
classifier as learnt embeddings or as scattered sparse coefficients."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from laser_core import cli
from laser_core.plugin.contracts import Codes
from laser_plugins.tasks import code_features
from tests.downstream.conftest import DIGITS_RECIPE
from tests.helpers import TINY_RECIPE

INPUTS = ("pixels", "continuous", "quantized", "codes")


@pytest.mark.slow
def test_laser_run_classifies_digits_latents_far_above_chance_beside_pixels(digits_run):
    run_dir, printed = digits_run
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["task/chance/accuracy"] < 0.15  # ten balanced classes
    for name in INPUTS:
        assert metrics[f"task/{name}/accuracy"] > 0.6, name
        assert metrics[f"task/{name}/train_seconds"] > 0, name
    # 8x8 grey pixels; 4x4 latents of dim 4; 4x4 VQ indices
    sizes = {name: metrics[f"task/{name}/input_size"] for name in INPUTS}
    assert sizes == {"pixels": 64, "continuous": 64, "quantized": 64, "codes": 16}
    table = printed.split("task classify:")[1]
    assert "accuracy" in table and all(name in table for name in INPUTS)


@pytest.mark.slow
def test_laser_task_reruns_the_task_with_another_classifier(digits_run, tmp_path, capsys):
    run_dir = shutil.copytree(digits_run[0], tmp_path / "run")
    overrides = ["task.classifier=cnn", "task.inputs=[codes]", "task.epochs=1", "task.hidden=8"]
    assert cli.main(["task", str(run_dir), *overrides]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    tasks = {key for key in metrics if key.startswith("task/")}
    assert tasks == {
        "task/chance/accuracy",
        "task/codes/accuracy",
        "task/codes/train_seconds",
        "task/codes/input_size",
    }
    assert "mse" in metrics and "codes" in capsys.readouterr().out


def test_validate_refuses_classify_on_unlabelled_data_at_the_task_line(write_recipe, capsys):
    unlabelled = write_recipe(TINY_RECIPE + "task: {name: classify}\n", "unlabelled.yaml")
    assert cli.main(["validate", str(unlabelled)]) == 2
    err = capsys.readouterr().err
    assert f"{unlabelled.resolve()}:8: task: 'classify'" in err and "has no labels" in err
    assert cli.main(["validate", str(write_recipe(DIGITS_RECIPE, "digits.yaml"))]) == 0


def test_sparse_codes_become_their_coefficients_scattered_over_the_atoms():
    indices = torch.tensor([2, 0]).view(1, 1, 1, 2)  # one position using atoms 2 and 0
    values = torch.tensor([0.5, -1.0]).view(1, 1, 1, 2)
    dense = code_features(Codes(indices, values), atoms=4)
    assert dense.shape == (1, 4, 1, 1)
    assert dense.flatten().tolist() == [-1.0, 0.0, 0.5, 0.0]


def test_one_of_k_codes_stay_indices_and_gaussian_codes_their_means():
    indices = torch.randint(8, (2, 3, 3, 1))
    assert code_features(Codes(indices), atoms=8) is indices
    means = torch.randn(2, 3, 3, 5)
    assert torch.equal(code_features(Codes(None, means), atoms=0), means.permute(0, 3, 1, 2))


@pytest.mark.slow
def test_the_task_classifies_another_labelled_dataset_when_given_one(digits_run, tmp_path, capsys):
    run_dir = shutil.copytree(digits_run[0], tmp_path / "run")
    quick = ["task.inputs=[pixels]", "task.epochs=1"]
    unlabelled = "task.data={name: photo-patches, size: 8, channels: 1}"
    assert cli.main(["task", str(run_dir), *quick, unlabelled]) == 1
    assert "dataset 'photo-patches'" in capsys.readouterr().err

    halved = "task.data={name: digits, size: 8, val_fraction: 0.5}"
    assert cli.main(["task", str(run_dir), *quick, halved]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    # one epoch on half the training digits: far from done, but far above chance
    assert metrics["task/pixels/accuracy"] > 2 * metrics["task/chance/accuracy"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("bottleneck", "depth"),
    [("{name: fsq, levels: [5, 5, 3]}", 1), ("{name: lfq, dims: 6, codes: per-dimension}", 6)],
    ids=["fsq", "lfq"],
)
def test_implicit_codebooks_codes_classify_unchanged(bottleneck, depth, tmp_path, capsys):
    recipe = tmp_path / "digits.yaml"
    recipe.write_text(
        DIGITS_RECIPE.replace("{name: vq, codebook_size: 32}", bottleneck).replace(
            "epochs: 5", "epochs: 3, inputs: [codes]"
        )
    )
    assert cli.main(["run", str(recipe), "--run-dir", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["task/codes/input_size"] == 16 * depth  # 4x4 positions
    assert metrics["task/codes/accuracy"] > 2 * metrics["task/chance/accuracy"]
