"""What the ``factorized`` and ``hyperprior`` bottlenecks share: their learnt densities
(entropy_layers.py) and the conversion of those into the integer coding tables the run stores.

The densities give the training likelihoods only; the bits are coded by LASER's one range
coder from tables derived once (``laser_core.ops.coding_table``), so that the run directory,
not a density evaluated again at decode time, fixes every coded probability.
"""

from __future__ import annotations

import math

import torch

from laser_core.ops import CodingTable, coding_table

from .entropy_layers import (
    LIKELIHOOD_BOUND,
    SCALE_BOUND,
    EntropyBottleneck,
    GaussianConditional,
)

__all__ = [
    "EntropyBottleneck",
    "GaussianConditional",
    "factorized_table",
    "gaussian_table",
    "image_bits",
    "scale_rows",
]

FACTORIZED_SUPPORT = 512
"""The factorized density is tabulated on the integers -512 to 512, then trimmed to its mass."""
SCALES = torch.exp(torch.linspace(math.log(SCALE_BOUND), math.log(256.0), 128, dtype=torch.float64))
"""The Gaussian scales that have a coding table: 128 log-spaced from 0.11 to 256, each 6%
above the last, so coding at the next larger scale costs under 0.3% of the rate."""


def image_bits(likelihoods: torch.Tensor) -> torch.Tensor:
    """Each image's bits (batch,): the -log2 likelihoods (batch, ...) summed over the image."""
    return -torch.log2(likelihoods).flatten(1).sum(1)


@torch.no_grad()
def factorized_table(density: EntropyBottleneck, reach: int = FACTORIZED_SUPPORT) -> CodingTable:
    """One row per channel: the probability of each integer from -reach to reach under the
    channel's density, which is what rounded latents cost in eval."""
    channels = density.channels
    support = torch.arange(-reach, reach + 1, dtype=torch.float32)
    grid = support.to(density.quantiles.device).expand(1, channels, 1, -1).contiguous()
    was_training = density.training
    density.eval()
    _, likelihoods = density(grid)
    density.train(was_training)
    probabilities = likelihoods[0, :, 0].double()
    probabilities = torch.where(probabilities > LIKELIHOOD_BOUND, probabilities, 0.0)
    return coding_table(probabilities, -reach)


def gaussian_table() -> CodingTable:
    """One row per scale of SCALES: a zero-mean Gaussian integrated over each integer's
    interval, as GaussianConditional's likelihood is."""
    reach = math.ceil(8 * float(SCALES[-1])) + 1
    integers = torch.arange(-reach, reach + 1, dtype=torch.float64)
    scales = SCALES[:, None]
    upper = torch.special.ndtr((integers + 0.5) / scales)
    lower = torch.special.ndtr((integers - 0.5) / scales)
    return coding_table(upper - lower, -reach)


def scale_rows(scales: torch.Tensor) -> torch.Tensor:
    """The row of SCALES coding a latent of each predicted scale (any shape): the smallest
    tabulated scale at or above it. The one decision a float makes in decoding: a scale
    within rounding of a table entry may pick the neighbouring row on other hardware."""
    table = SCALES.to(device=scales.device, dtype=scales.dtype)
    bounded = scales.clamp_min(SCALE_BOUND).contiguous()  # bucketize copies strided input
    return torch.bucketize(bounded, table).clamp_max(len(SCALES) - 1)
