"""Encoder-side refinement (``laser compress --refine STEPS``): the encoder's latents of one
image are a good start, not the best code for that image. Refinement fits them, with the
decoder and the entropy model fixed, to the very objective the run trained for, distortion +
rate weight x bits per pixel, on this image alone (Campos et al., 2019), rounding relaxed by
annealed soft rounding (Yang et al., 2020: ``EntropyCodedBottleneck.relaxed``). The file
format and the decoder are unchanged: only the encoder spends more time.

Every CHECK_EVERY steps the code is costed as the file will hold it (rounded, clamped to the
coding tables, its bits counted under them), and the best code seen wins, the encoder's own
among them: refinement never returns a code that costs more than the unrefined one.
"""

from __future__ import annotations

import torch
from torch import nn

from laser_core.assembly.losses import ImageLosses
from laser_core.coding.table_coder import TableCoder
from laser_core.errors import LaserError
from laser_core.plugin.contracts import EntropyCodedBottleneck

LEARNING_RATE = 0.03
"""Adam's step size on the latents (integer-spaced codes), decayed linearly to 0."""
TEMPERATURES = (0.5, 0.05)
"""Soft rounding's temperature, annealed geometrically from the first to the second."""
CHECK_EVERY = 10
"""Steps between costings of the code as the file holds it (a decoder pass each)."""
SEED = 0
"""The soft rounding's draws are seeded, so that one image always refines to one file."""
REFINABLE = "the latents of a run coding whole images under a factorized prior or hyperprior"
"""What ``--refine`` applies to (``EntropyCodedBottleneck.refinable``), as messages say it."""


def checked_steps(steps: int) -> int:
    """``--refine``'s steps, refused below 0 (0: no refinement)."""
    if steps < 0:
        raise LaserError(f"--refine takes a number of steps, 0 (none) or more (got {steps})")
    return steps


class LatentRefiner:
    """Fits an image's latents to a run's rate-distortion objective under a fixed model."""

    def __init__(
        self,
        decoder: nn.Module,
        bottleneck: EntropyCodedBottleneck,
        coder: TableCoder,
        losses: ImageLosses,
        rate_weight: float,
        steps: int,
    ):
        self.decoder, self.bottleneck, self.coder = decoder, bottleneck, coder
        self.losses, self.rate_weight, self.steps = losses, rate_weight, steps

    def refine(
        self, latents: torch.Tensor, image: torch.Tensor, grid: tuple[int, int]
    ) -> torch.Tensor:
        """The latents (1, dim, *grid) whose code costs least on ``image`` (1, C, H, W) in
        [-1, 1], of the encoder's ``latents`` and those refinement visits."""
        from tqdm.auto import tqdm  # imported here: the command line must start fast

        best, best_cost = latents, self.cost(latents, image, grid)
        z = latents.detach().clone().requires_grad_(True)
        optimizer = torch.optim.Adam([z], lr=LEARNING_RATE)
        hottest, coldest = TEMPERATURES
        with torch.random.fork_rng(devices=[]), torch.enable_grad():
            torch.manual_seed(SEED)
            for step in tqdm(range(self.steps), desc="refine", unit="step", leave=False):
                progress = step / self.steps
                optimizer.param_groups[0]["lr"] = LEARNING_RATE * (1 - progress)
                soft, bits = self.bottleneck.relaxed(z, hottest * (coldest / hottest) ** progress)
                loss = self._objective(self.decoder(soft), image, bits.sum())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if (step + 1) % CHECK_EVERY == 0 or step + 1 == self.steps:
                    cost = self.cost(z.detach(), image, grid)
                    if cost < best_cost:
                        best, best_cost = z.detach().clone(), cost
        return best

    @torch.no_grad()
    def cost(self, latents: torch.Tensor, image: torch.Tensor, grid: tuple[int, int]) -> float:
        """The objective of the code the file would hold for ``latents``: its reconstruction's
        distortion and the bits the coding tables spend on it."""
        stages, rows = self.coder.clamp(self.bottleneck.stage_symbols(latents), grid)
        decoded = self.bottleneck.dequantize(stages).to(latents.device)
        reconstruction = self.decoder(decoded.contiguous(memory_format=torch.channels_last))
        bits = torch.tensor(self.coder.bits(stages, rows))
        return float(self._objective(reconstruction.clamp(-1, 1), image, bits))

    def _objective(
        self, reconstruction: torch.Tensor, image: torch.Tensor, bits: torch.Tensor
    ) -> torch.Tensor:
        """Distortion + rate weight x bits per pixel, the padding cropped away."""
        height, width = image.shape[2:]
        distortion = sum(self.losses(reconstruction[..., :height, :width], image).values())
        return distortion + self.rate_weight * bits / (height * width)
