"""What the ``factorized`` and ``hyperprior`` bottlenecks share: CompressAI's learnt densities,
imported quietly, and their conversion into the integer coding tables the run stores.

CompressAI (Bégaint et al., 2020) holds the reference implementations of Ballé et al.'s
entropy models; LASER uses them for the training likelihoods only and codes the bits with its
own range coder from tables derived once (``laser_core.ops.coding_table``), so that the run
directory, not a density evaluated again at decode time, fixes every coded probability.
"""

from __future__ import annotations

import math

import torch

from laser_core.ops import CodingTable, coding_table

from .compressai_modules import EntropyBottleneck, GaussianConditional

__all__ = [
    "EntropyBottleneck",
    "GaussianConditional",
    "entropy_model",
    "factorized_table",
    "gaussian_table",
    "scale_rows",
]

LIKELIHOOD_BOUND = 1e-9
"""CompressAI's floor under every likelihood; a table treats mass at the floor as none."""
FACTORIZED_SUPPORT = 512
"""The factorized density is tabulated on the integers -512 to 512, then trimmed to its mass."""
SCALE_BOUND = 0.11
"""The smallest Gaussian scale, as GaussianConditional bounds it in training."""
SCALES = torch.exp(torch.linspace(math.log(SCALE_BOUND), math.log(256.0), 128, dtype=torch.float64))
"""The Gaussian scales that have a coding table: 128 log-spaced from 0.11 to 256, each 6%
above the last, so coding at the next larger scale costs under 0.3% of the rate."""


CODER_BUFFERS = ("_offset", "_quantized_cdf", "_cdf_length", "scale_table")
"""CompressAI's tables for its own coder, empty until its ``update()``, which LASER never
calls: they are not saved, so the weights hold only what the densities learnt."""


def entropy_model(model: EntropyBottleneck | GaussianConditional):
    """``model`` with its coder buffers (CODER_BUFFERS) left out of its state dict."""
    buffers = dict(model.named_buffers(recurse=False))
    for name in CODER_BUFFERS:
        if name in buffers:
            model.register_buffer(name, buffers[name], persistent=False)
    return model


@torch.no_grad()
def factorized_table(density: EntropyBottleneck) -> CodingTable:
    """One row per channel: the probability of each integer under the channel's density,
    which is what rounded latents cost in eval."""
    channels = density.channels
    support = torch.arange(-FACTORIZED_SUPPORT, FACTORIZED_SUPPORT + 1, dtype=torch.float32)
    grid = support.to(density.quantiles.device).expand(1, channels, 1, -1).contiguous()
    was_training = density.training
    density.eval()
    _, likelihoods = density(grid)
    density.train(was_training)
    probabilities = likelihoods[0, :, 0].double()
    probabilities = torch.where(probabilities > LIKELIHOOD_BOUND, probabilities, 0.0)
    return coding_table(probabilities, -FACTORIZED_SUPPORT)


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
    return torch.bucketize(scales.clamp_min(SCALE_BOUND), table).clamp_max(len(SCALES) - 1)
