"""Built-in tasks: ``classify``, latent classification on a finished run.

How much of an image's class survives the bottleneck? The same small classifier (``linear``,
``mlp`` or ``cnn``) is trained on the run's dataset (train split, evaluated on val) from
each input in turn:

``data`` swaps in another labelled dataset block for the run's own (same image size and
channels as the model was trained on).

- ``pixels``: the images themselves (C, H, W), the baseline;
- ``continuous``: the encoder's output (dim, h, w);
- ``quantized``: the bottleneck's output (dim, h, w);
- ``codes``: one-of-K indices (h, w, depth) through a learnt embedding of ``code_embedding``
  numbers per symbol; sparse codes as their coefficients scattered into a K-dim vector per
  position (K, h, w); codes without indices (gaussian) as their values (dim, h, w).

Each input reports ``accuracy`` on val, ``train_seconds`` (classifier training only) and
``input_size`` (numbers per image as the model gives them); ``chance/accuracy`` is the share
of val's most common class.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field
from torch import nn
from torch.utils.data import DataLoader

from laser_core import (
    BuildContext,
    Codes,
    CodeSpec,
    ComponentConfig,
    ComponentError,
    ConvClassifier,
    LaserError,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    Register,
    Seed,
    TrainedRun,
    classifier_accuracy,
    dataset_overrides,
    encode_images,
    fit_classifier,
    hookimpl,
    load_run,
)

Input = Literal["pixels", "continuous", "quantized", "codes"]
Classifier = Literal["linear", "mlp", "cnn"]


class ClassifyConfig(ComponentConfig):
    classifier: Classifier = Field(
        "linear", description="linear: one layer; mlp: one hidden layer; cnn: two 3x3 convs"
    )
    inputs: list[Input] = Field(
        default_factory=lambda: ["pixels", "continuous", "quantized", "codes"], min_length=1
    )
    epochs: PositiveInt = Field(30, description="passes over the train split per classifier")
    batch_size: PositiveInt = Field(64)
    lr: PositiveFloat = Field(3e-3, description="AdamW learning rate")
    weight_decay: NonNegativeFloat = Field(1e-4)
    hidden: PositiveInt = Field(128, description="width of the mlp's hidden layer and cnn's convs")
    code_embedding: PositiveInt = Field(8, description="numbers learnt per code symbol (codes)")
    seed: Seed = Field(0, description="seeds the classifiers' weights and batch order")
    data: dict[str, Any] | None = Field(
        None, description="a labelled dataset block to classify; null: the run's own dataset"
    )


class ClassifyTask:
    """linear/mlp/cnn classifier on pixels, continuous, quantized latents and codes.

    Trains ``config.classifier`` on each of ``config.inputs``; see the module docstring."""

    def __init__(self, config: ClassifyConfig, context: BuildContext):
        if config.data is None and context.num_classes == 0:
            raise ComponentError(
                "the recipe's dataset has no labels; classify needs a labelled dataset such as "
                "digits or image-folder with one subfolder per class, or a labelled `data:` block"
            )
        self.config = config

    def run(self, run_dir: Path) -> dict[str, float]:
        from accelerate import PartialState  # imported here: loading every plugin must stay fast

        data = self.config.data
        run = load_run(run_dir, dataset_overrides(data) if data else ())
        if run.data.num_classes is None:
            raise LaserError(
                f"task 'classify': dataset '{run.recipe.data.name}' of {run_dir} has no labels; "
                "classification needs a labelled dataset such as digits or image-folder"
            )
        device = PartialState().device
        run.model.to(device).eval()
        train_x, train_y = extract(run, "train", device)
        val_x, val_y = extract(run, "val", device)
        results = {"chance/accuracy": val_y.bincount().max().item() / len(val_y)}
        spec = run.model.bottleneck.code_spec()
        for name in self.config.inputs:
            model = classifier(self.config, train_x[name], spec, run.data.num_classes).to(device)
            start = time.perf_counter()
            fit_classifier(
                model,
                train_x[name],
                train_y,
                epochs=self.config.epochs,
                batch_size=self.config.batch_size,
                lr=self.config.lr,
                weight_decay=self.config.weight_decay,
                seed=self.config.seed,
                label=f"classify {name}",
            )
            results[f"{name}/accuracy"] = classifier_accuracy(model, val_x[name], val_y)
            results[f"{name}/train_seconds"] = time.perf_counter() - start
            results[f"{name}/input_size"] = float(input_size(name, train_x[name], spec))
        return results


@torch.no_grad()
def extract(
    run: TrainedRun, split: str, device: torch.device
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Every input of every image of ``split`` in dataset order, (images, ...) each, and the
    labels (images,)."""
    from tqdm.auto import tqdm  # imported here: loading every plugin must stay fast

    loader = DataLoader(getattr(run.data, split), batch_size=run.recipe.data.config.batch_size)
    atoms = max(run.model.bottleneck.code_spec().alphabet_sizes, default=0)
    parts: dict[str, list[torch.Tensor]] = {}
    labels = []
    for batch in tqdm(loader, desc=f"encode {split}", unit="batch", leave=False):
        images = batch["image"].to(device)
        latents = encode_images(run.model, images)
        views = {
            "pixels": images.float(),
            "continuous": latents.continuous.float(),
            "quantized": latents.quantized.float(),
            "codes": code_features(latents.codes, atoms),
        }
        for name, view in views.items():
            parts.setdefault(name, []).append(view)
        labels.append(batch["label"].to(device))
    return {name: torch.cat(views) for name, views in parts.items()}, torch.cat(labels)


def code_features(codes: Codes, atoms: int) -> torch.Tensor:
    """Codes as classifier input: indices (images, h, w, depth) long, left for a learnt
    embedding; sparse codes scattered to (images, atoms, h, w) float; values alone as
    (images, depth, h, w) float."""
    if codes.values is None:
        return codes.indices
    if codes.indices is None:
        return codes.values.float().permute(0, 3, 1, 2)
    dense = codes.values.new_zeros(*codes.indices.shape[:-1], atoms)
    dense.scatter_add_(-1, codes.indices, codes.values.float())
    return dense.permute(0, 3, 1, 2)


def input_size(name: str, x: torch.Tensor, spec: CodeSpec) -> int:
    """Numbers per image as the model gives them: a sparse code counts its indices and
    coefficients, not the zeros of its scattered form."""
    if name == "codes" and spec.has_values and spec.alphabet_sizes:
        return 2 * x.shape[2] * x.shape[3] * len(spec.alphabet_sizes)
    return x[0].numel()


class CodeEmbedding(nn.Module):
    """Indices (images, h, w, depth) -> (images, depth * width, h, w), one learnt vector per
    symbol of each slot."""

    def __init__(self, alphabet_sizes: list[int], width: int):
        super().__init__()
        self.register_buffer("offsets", torch.tensor([0, *alphabet_sizes[:-1]]).cumsum(0))
        self.table = nn.Embedding(sum(alphabet_sizes), width)

    def forward(self, indices: torch.Tensor) -> torch.Tensor:
        vectors = self.table(indices + self.offsets)  # (images, h, w, depth, width)
        return vectors.flatten(3).permute(0, 3, 1, 2)


class Standardize(nn.Module):
    """Each channel to zero mean and unit variance over the train split, so one learning
    rate suits pixels and latents of any scale."""

    def __init__(self, x: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", x.mean(dim=(0, 2, 3), keepdim=True))
        self.register_buffer("std", x.std(dim=(0, 2, 3), keepdim=True).clamp(min=1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def classifier(config: ClassifyConfig, x: torch.Tensor, spec: CodeSpec, classes: int) -> nn.Module:
    """The classifier for inputs like ``x`` (images, C, h, w), or code indices (images, h, w,
    depth) behind a :class:`CodeEmbedding`."""
    torch.manual_seed(config.seed)
    if x.dtype == torch.long:
        front: nn.Module = CodeEmbedding(spec.alphabet_sizes, config.code_embedding)
        channels, height, width = x.shape[3] * config.code_embedding, x.shape[1], x.shape[2]
    else:
        front = Standardize(x)
        channels, height, width = x.shape[1:]
    hidden = config.hidden
    heads = {
        "linear": lambda: nn.Sequential(
            nn.Flatten(), nn.Linear(channels * height * width, classes)
        ),
        "mlp": lambda: nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * height * width, hidden),
            nn.ReLU(),
            nn.Linear(hidden, classes),
        ),
        "cnn": lambda: ConvClassifier(channels, hidden, classes),
    }
    return nn.Sequential(front, heads[config.classifier]())


@hookimpl
def laser_register_tasks(register: Register) -> None:
    register("classify", ClassifyTask, config=ClassifyConfig)
