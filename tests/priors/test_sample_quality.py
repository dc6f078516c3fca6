"""`laser sample --evaluate`: FID/KID of samples and reconstructions through a classifier
LASER trains itself, and its accuracy on class-conditional samples."""

from __future__ import annotations

import json

import pytest
import torch

from laser_core.cli.main import main
from laser_core.downstream.classifier import ConvClassifier
from laser_core.priors import quality
from laser_core.rundir import manifest


@pytest.fixture
def quick_classifier(monkeypatch):
    """The judging classifier trained for 3 epochs instead of 30."""
    monkeypatch.setitem(quality.CLASSIFIER, "epochs", 3)


def test_fid_and_kid_through_a_classifier_vanish_for_the_same_images_only(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "judge.pt"
    torch.jit.save(torch.jit.script(quality.Judge(ConvClassifier(1, 8, 3))), str(path))
    images = torch.rand(40, 1, 8, 8) * 2 - 1
    metrics = quality._feature_metrics(str(path), len(images))
    same = quality._distances(metrics, images, images)
    other = quality._distances(metrics, images, -images.abs())
    assert same["fid"] == pytest.approx(0, abs=1e-3) and abs(same["kid"]) < 1e-4
    assert other["fid"] > 100 * max(same["fid"], 1e-6) and other["kid"] > 10 * abs(same["kid"])


def test_evaluate_scores_samples_against_reconstructions_into_the_priors_metrics(
    fresh_run, transformer_recipe, quick_classifier, capsys
):
    assert main(["prior", str(fresh_run), str(transformer_recipe(4))]) == 0
    assert main(["sample", str(fresh_run), "--prior", "tiny", "--evaluate"]) == 0
    assert "classifier/samples/fid" in capsys.readouterr().out
    folder = fresh_run / "priors" / "tiny"
    metrics = json.loads((folder / "metrics.json").read_text())
    assert manifest.verify(folder, ["metrics.json"])
    assert metrics["bits_per_image"] > 0  # the training's numbers stay
    for kind in ("samples", "reconstructions"):
        assert metrics[f"classifier/{kind}/fid"] >= 0 and f"classifier/{kind}/kid" in metrics
    per_class = [metrics[f"classifier/samples/accuracy/{label}"] for label in range(10)]
    assert all(0 <= share <= 1 for share in per_class)
    val_labels = _val_labels(fresh_run)
    weighted = sum(per_class[c] * (val_labels == c).sum().item() for c in range(10))
    assert metrics["classifier/samples/accuracy"] == pytest.approx(weighted / len(val_labels))
    assert 0.1 < metrics["classifier/val/accuracy"] <= 1  # trained on real digits: above chance
    assert (fresh_run / "priors" / "classifier.pt").is_file()


def _val_labels(run) -> torch.Tensor:
    from laser_core.runs.load import load_run

    return torch.tensor([item["label"] for item in load_run(run).data.val])


def test_bad_evaluate_inputs_are_clear_messages(
    fresh_run, transformer_recipe, monkeypatch, tmp_path, capsys
):
    run = str(fresh_run)
    assert main(["prior", run, str(transformer_recipe(2))]) == 0
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))
    cases = {
        ("sample", run): "needs -o GRID.png, --evaluate or both",
        ("sample", run, "--evaluate", "--class", "3"): "drop --class",
        ("sample", run, "--evaluate", "--temperature", "0"): "above 0",
        ("sample", run, "--evaluate", "--features", "inception"): "laser weights import",
        ("sample", run, "--evaluate", "--features", "nope.pt"): "neither 'inception' nor a file",
    }
    for argv, message in cases.items():
        assert main(list(argv)) == 1
        assert message in capsys.readouterr().err
