"""Images sampled from a trained prior: tokens drawn by the prior, decoded by the run."""

from __future__ import annotations

from pathlib import Path

import torch

from laser_core.coding.codec import Codec
from laser_core.coding.symbols import to_codes
from laser_core.coding.tokens import from_tokens
from laser_core.coding.trained_priors import TrainedPrior
from laser_core.data.images import tile, to_pixels, write_png
from laser_core.errors import LaserError
from laser_core.plugin.priors import SymbolSpec


@torch.no_grad()
def sample_images(
    codec: Codec,
    trained: TrainedPrior,
    n: int,
    label: int | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> torch.Tensor:
    """``n`` images (n, C, H, W) in [-1, 1] of the run's tile size, from sampled codes;
    ``label`` conditions a class-conditional prior."""
    spec = trained.spec
    if n < 1:
        raise LaserError(f"the number of samples must be at least 1, got {n}")
    if not temperature > 0:
        raise LaserError(f"the temperature must be above 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise LaserError(f"--top-k must be at least 1, got {top_k}")
    labels = None
    if label is not None:
        if not trained.prior.conditional:
            raise LaserError(
                f"the prior '{trained.name}' is unconditional (its run's dataset has no "
                "labels, or the prior ignores them); drop --class"
            )
        if not 0 <= label < spec.num_classes:
            raise LaserError(f"--class must lie in 0..{spec.num_classes - 1}, got {label}")
        labels = torch.full((n,), label, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    return decode_tokens(
        codec, spec, trained.prior.sample(n, labels, temperature, top_k, generator)
    )


@torch.no_grad()
def decode_tokens(codec: Codec, spec: SymbolSpec, tokens: torch.Tensor) -> torch.Tensor:
    """Images (n, C, H, W) in [-1, 1] that the run's decoder makes of tokens (n, tokens)."""
    symbols = from_tokens(tokens.cpu(), spec)
    shape = (tokens.shape[0], *spec.grid, max(spec.slots) + 1)
    codes = to_codes(symbols, codec.priors.quantizer, shape)
    model = codec.model
    return model.decoder(model.bottleneck.decode(codes)).clamp(-1, 1)


def write_grid(images: torch.Tensor, path: Path) -> None:
    """A PNG grid of images (n, C, H, W) in [-1, 1], about square."""
    rows = max(1, round(images.shape[0] ** 0.5))
    write_png(to_pixels(tile(images, columns=rows, pad_value=1.0)), path)
