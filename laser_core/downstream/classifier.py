"""Small image classifiers LASER trains itself: the ``cnn`` of the classify task, and the
classifier whose features and predictions judge sampled images (priors/quality.py)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ConvClassifier(nn.Module):
    """Two 3x3 convolutions of ``width`` channels, global average pooling, a linear head:
    images (batch, channels, height, width) -> logits (batch, classes)."""

    def __init__(self, channels: int, width: int, classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(width, classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled activations (batch, width) the head reads."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def fit_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    label: str,
) -> None:
    """AdamW on cross-entropy, ``epochs`` shuffled passes over x (images, ...) and labels y
    (images,), with a progress bar named ``label`` (a cnn on a large split takes minutes)."""
    from tqdm.auto import tqdm  # imported here: loading every plugin must stay fast

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in tqdm(range(epochs), desc=label, unit="epoch", leave=False):
        for rows in torch.randperm(len(y), generator=generator).split(batch_size):
            rows = rows.to(y.device)
            loss = F.cross_entropy(model(x[rows]), y[rows])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    model.eval()


@torch.no_grad()
def classifier_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The share of x (images, ...) that ``model`` gives the label y (images,)."""
    model.eval()
    return (model(x).argmax(1) == y).float().mean().item()
