"""The plain data a bottleneck hands on: its codes, their alphabet and its output. They sit
below the kernels in :mod:`laser_core.ops`, which return them; the plugin API
(:mod:`laser_core.plugin.contracts`, the ``laser_core`` top level) re-exports them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass
class Codes:
    """A bottleneck's discrete or sparse code for each latent position.

    indices: long (..., depth), an alphabet symbol per depth slot (VQ depth 1, RQ depth =
    levels, OMP depth = sparsity); None for purely continuous codes (gaussian).
    values: float (..., depth) coefficients for sparse codes, or the means of a gaussian code;
    None for one-of-K codes.
    """

    indices: torch.Tensor | None
    values: torch.Tensor | None = None

    def map(self, fn: Any) -> Codes:
        """Apply ``fn`` to every tensor present, e.g. to move or slice codes."""
        return Codes(
            None if self.indices is None else fn(self.indices),
            None if self.values is None else fn(self.values),
        )


@dataclass
class CodeSpec:
    """Alphabet size of each depth slot and whether codes carry values, for coders and priors."""

    alphabet_sizes: list[int]
    has_values: bool = False


@dataclass
class BottleneckOutput:
    """quantized is (batch, output_dim, height, width), z's shape for most bottlenecks, and
    passes gradients to the encoder; loss is a scalar.

    bits (batch,) is each image's -log2 likelihood of its codes under the bottleneck's own
    entropy model, differentiable (noisy codes in training, rounded ones in eval), or None
    without one. The trainer turns it into the rate term (``losses.rate`` x bits per pixel):
    rate belongs to codes under a probability model, so any bottleneck that learns one can
    report it."""

    quantized: torch.Tensor
    loss: torch.Tensor
    codes: Codes
    stats: dict[str, torch.Tensor] = field(default_factory=dict)
    bits: torch.Tensor | None = None
