"""How good are a prior's samples? What ``laser sample RUN_DIR --evaluate`` measures.

One sample per validation image (with its class, when the prior is class-conditional) is
compared with the validation images by FID and KID, next to the FID and KID of the run's own
reconstructions of them (decoded from their coded tokens): the floor a perfect prior of these
codes would reach. A classifier trained on the real training images then says how often a
class-conditional sample shows the class it was asked for.

Features (``features``): by default that classifier's pooled activations (``classifier``):
LASER trains it itself, so nothing is downloaded, but its FID is not the FID papers report
(Inception features of ImageNet images); compare such numbers only between priors and runs of
one dataset judged by one classifier. ``inception`` uses torchmetrics' Inception when its
weights are in the torch cache (``laser weights import``), and a path uses any feature file
the ``fid`` metric takes. The classifier is trained once per run, in
``RUN_DIR/priors/classifier.pt``; the numbers are added to the prior's metrics.json.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from laser_core.assembly.build import build_component
from laser_core.coding.codec import Codec
from laser_core.coding.trained_priors import PRIORS_DIR
from laser_core.downstream.classifier import ConvClassifier, classifier_accuracy, fit_classifier
from laser_core.errors import LaserError
from laser_core.files import atomic_write
from laser_core.priors.export import export_tokens
from laser_core.priors.sample import decode_tokens
from laser_core.priors.workflow import open_prior
from laser_core.rundir import manifest
from laser_core.rundir.layout import RunDir
from laser_core.runs.load import TrainedRun

CLASSIFIER_FILE = "classifier.pt"
CLASSIFIER_INFO = "classifier.json"
"""The classifier's own record inside its TorchScript file: its settings and val accuracy."""
CLASSIFIER = {"width": 32, "epochs": 20, "batch_size": 64, "lr": 3e-3, "weight_decay": 1e-4}
BATCH = 256
"""Images sampled, decoded or featurised at once."""


class Judge(nn.Module):
    """A trained classifier as the ``fid`` and ``kid`` metrics take a feature extractor:
    images (batch, C, H, W) in [-1, 1] -> features (batch, width); ``classify`` gives its
    logits (batch, classes)."""

    def __init__(self, classifier: ConvClassifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(images)

    @torch.jit.export
    def classify(self, images: torch.Tensor) -> torch.Tensor:
        return self.classifier(images)


def run_classifier(run: TrainedRun, seed: int = 0) -> tuple[Path, torch.jit.ScriptModule, dict]:
    """The run's classifier of real images (its path, the module and its record), trained on
    its training split and scored on its validation split the first time it is asked for."""
    path = run.run_dir / PRIORS_DIR / CLASSIFIER_FILE
    if not path.is_file():
        if not run.data.num_classes:
            raise LaserError(
                f"{run.run_dir}: dataset '{run.recipe.data.name}' has no labels, so LASER cannot "
                "train a classifier to judge samples; pass --features inception (or a feature "
                "file) instead"
            )
        train_x, train_y = _images(run.data.train)
        val_x, val_y = _images(run.data.val)
        torch.manual_seed(seed)
        model = ConvClassifier(train_x.shape[1], CLASSIFIER["width"], run.data.num_classes)
        settings = {k: v for k, v in CLASSIFIER.items() if k != "width"}
        fit_classifier(model, train_x, train_y, seed=seed, label="classifier", **settings)
        record = CLASSIFIER | {
            "seed": seed,
            "val_accuracy": classifier_accuracy(model, val_x, val_y),
        }
        with _quiet_torchscript():
            scripted = torch.jit.script(Judge(model))
            extra = {CLASSIFIER_INFO: json.dumps(record)}
            atomic_write(path, lambda temporary: torch.jit.save(scripted, str(temporary), extra))
    extra = {CLASSIFIER_INFO: ""}
    with _quiet_torchscript():
        judge = torch.jit.load(str(path), map_location="cpu", _extra_files=extra).eval()
    return path, judge, json.loads(extra[CLASSIFIER_INFO])


@contextmanager
def _quiet_torchscript() -> Iterator[None]:
    """TorchScript (what the classifier file is: one file holding a module with a second
    method, ``classify``; the ``fid`` metric reads it too) warns that it is deprecated."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
        yield


def evaluate_samples(
    run_dir: str | Path,
    prior: str | None = None,
    features: str = "classifier",
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """FID/KID of samples and of reconstructions against the validation images, and the
    classifier's accuracy on class-conditional samples (overall and per requested class);
    added to the prior's metrics.json and returned."""
    if not temperature > 0:
        raise LaserError(f"--temperature must be above 0, got {temperature}")
    codec = Codec.open(Path(run_dir))
    trained = open_prior(codec, prior)
    val = export_tokens(codec).val
    if features != "classifier":  # a missing weight file or a bad path fails before sampling
        feature_metrics = _feature_metrics(features, len(val))
    real, real_labels = _images(codec.run.data.val)
    labels = val.labels if trained.prior.conditional else None
    generator = torch.Generator().manual_seed(seed)
    sampled = []
    for start in range(0, len(val), BATCH):
        part = None if labels is None else labels[start : start + BATCH]
        count = min(BATCH, len(val) - start)
        tokens = trained.prior.sample(count, part, temperature, top_k, generator)
        sampled.append(decode_tokens(codec, trained.spec, tokens))
    samples = torch.cat(sampled)
    reconstructions = torch.cat(
        [decode_tokens(codec, trained.spec, part) for part in val.tokens.split(BATCH)]
    )
    judged = features == "classifier" or labels is not None
    path, judge, record = run_classifier(codec.run) if judged else (None, None, {})
    if features == "classifier":
        feature_metrics = _feature_metrics(str(path), len(val))
    name = features if features in ("classifier", "inception") else "features"
    metrics: dict[str, float] = {
        "samples/images": float(len(val)),
        "samples/temperature": temperature,
        "samples/top_k": float(top_k or 0),
    }
    for kind, images in (("samples", samples), ("reconstructions", reconstructions)):
        for key, value in _distances(feature_metrics, real, images).items():
            metrics[f"{name}/{kind}/{key}"] = value
    if labels is not None:
        predicted = _predict(judge, samples)
        metrics["classifier/val/accuracy"] = record["val_accuracy"]
        metrics["classifier/reconstructions/accuracy"] = _share(
            _predict(judge, reconstructions) == real_labels
        )
        metrics["classifier/samples/accuracy"] = _share(predicted == labels)
        for label in labels.unique().tolist():
            asked = labels == label
            metrics[f"classifier/samples/accuracy/{label}"] = _share(predicted[asked] == label)
    files = RunDir(trained.directory)
    files.write_final_metrics(files.read_final_metrics() | metrics)
    manifest.reseal(trained.directory, [RunDir.METRICS])
    return metrics


def _feature_metrics(extractor: str, images: int) -> tuple[Any, Any]:
    """The ``fid`` and ``kid`` metrics through the feature extractor ``extractor``, for two
    sets of ``images`` images each."""
    kid_block = {"name": "kid", "features": extractor, "subset_size": min(1000, images)}
    with _quiet_torchscript():
        fid = build_component("metrics", {"name": "fid", "features": extractor})
        return fid, build_component("metrics", kid_block)


def _distances(
    metrics: tuple[Any, Any], real: torch.Tensor, fake: torch.Tensor
) -> dict[str, float]:
    """FID and KID of ``fake`` against ``real`` images (n, C, H, W) through ``metrics``."""
    fid, kid = metrics
    values = torch.cat(
        [
            fid.per_example(r, f, None)
            for r, f in zip(real.split(BATCH), fake.split(BATCH), strict=True)
        ]
    )
    return fid.summarize(values) | kid.summarize(values)


@torch.no_grad()
def _predict(judge: Any, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([judge.classify(part).argmax(1) for part in images.split(BATCH)])


def _share(hits: torch.Tensor) -> float:
    return hits.float().mean().item()


def _images(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Every image (n, C, H, W) of a split in dataset order, and its labels (n,) or None."""
    images, labels = [], []
    for batch in DataLoader(dataset, batch_size=BATCH):
        images.append(batch["image"])
        if "label" in batch:
            labels.append(torch.as_tensor(batch["label"]).long())
    return torch.cat(images), torch.cat(labels) if labels else None
