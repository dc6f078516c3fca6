"""``gumbel``: Gumbel-softmax codes (Jang et al., 2017; Maddison et al., 2017), as in the
DALL-E dVAE. A 1x1 convolution scores every code at every position; training samples a code
from softmax(logits) with the Gumbel-max trick and differentiates through the relaxation
softmax((logits + gumbel noise) / τ), whose temperature τ anneals during training. Eval and
``encode`` take the argmax.

``sampling: tempered`` puts τ on the logits instead, softmax(logits / τ + gumbel noise): codes
are then drawn from softmax(logits / τ), so as τ anneals towards 0 training draws the argmax
that eval uses, and the gap between training and eval codes closes; with the standard
relaxation, training keeps sampling from softmax(logits) however small τ gets.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from laser_core import (
    Bottleneck,
    BottleneckOutput,
    BuildContext,
    CodebookSize,
    Codes,
    CodeSpec,
    ComponentConfig,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    Register,
    code_counts,
    full_precision,
    hookimpl,
    usage_stats,
)


class GumbelConfig(ComponentConfig):
    codebook_size: CodebookSize = Field(512, description="number of codes")
    temperature_start: PositiveFloat = Field(1.0, description="τ of the relaxation at first")
    temperature_end: PositiveFloat = Field(
        0.0625, description="τ once anneal_steps training batches have passed"
    )
    anneal_steps: NonNegativeInt = Field(
        10000, description="training batches over which τ goes from start to end"
    )
    anneal: Literal["exponential", "linear"] = Field(
        "exponential", description="how τ moves between start and end"
    )
    sampling: Literal["gumbel-softmax", "tempered"] = Field(
        "gumbel-softmax",
        description="gumbel-softmax: codes drawn from softmax(logits), τ shapes the relaxation; "
        "tempered: codes drawn from softmax(logits / τ), the argmax as τ -> 0",
    )
    hard: bool = Field(
        True,
        description="true: the sampled code itself, with the relaxation's gradient "
        "(straight-through); false: the relaxed mixture of codes",
    )
    kl_weight: NonNegativeFloat = Field(
        5e-4, description="weight of KL(softmax(logits) || uniform), keeping codes in use"
    )


class GumbelQuantizer(Bottleneck):
    """Gumbel-softmax codes: sampled one-hot codes with an annealed relaxation.

    Latents (batch, dim, height, width) -> one of codebook_size codes per position; codes
    (batch, height, width, 1)."""

    step: torch.Tensor

    def __init__(self, config: GumbelConfig, context: BuildContext):
        super().__init__()
        self.dim, self.config = context.latent_dim, config
        self.projection = nn.Conv2d(self.dim, config.codebook_size, 1)
        self.codebook = nn.Parameter(torch.randn(config.codebook_size, self.dim))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def temperature(self) -> torch.Tensor:
        """τ after ``step`` training batches, a 0-dim tensor."""
        config = self.config
        progress = (self.step.float() / max(config.anneal_steps, 1)).clamp(max=1)
        start, end = config.temperature_start, config.temperature_end
        if config.anneal == "exponential":
            return start * (end / start) ** progress
        return start + (end - start) * progress

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Scores (batch, codebook_size, height, width) in fp32, so argmax ignores autocast."""
        with full_precision(z):
            return self.projection(z.float())

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        logits = self.logits(z)
        temperature = self.temperature()
        with full_precision(z):
            if self.training:
                weights = self._relaxed_sample(logits, temperature)
                indices = weights.argmax(1)
                quantized = torch.einsum("bkhw,kd->bdhw", weights, self.codebook)
                self.step += 1
            else:
                indices = logits.argmax(1)
                quantized = self._lookup(indices)
            # KL(q || uniform) = sum q log(q / (1/K)), averaged over positions.
            log_ratio = F.log_softmax(logits, dim=1) + math.log(len(self.codebook))
            kl = (F.softmax(logits, dim=1) * log_ratio).sum(1).mean()
        counts = code_counts(indices, len(self.codebook))
        return BottleneckOutput(
            quantized=quantized.to(z.dtype),
            loss=self.config.kl_weight * kl,
            codes=Codes(indices.unsqueeze(-1)),
            stats={**usage_stats(counts), "temperature": temperature, "kl": kl.detach()},
        )

    def _relaxed_sample(self, logits: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
        """Weights (batch, codebook_size, height, width) over the codes: one-hot when hard."""
        hard = self.config.hard
        if self.config.sampling == "tempered":
            return F.gumbel_softmax(logits / temperature, tau=1.0, hard=hard, dim=1)
        return F.gumbel_softmax(logits, tau=temperature, hard=hard, dim=1)

    def _lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes (batch, dim, height, width) for indices (batch, height, width)."""
        return F.embedding(indices, self.codebook).permute(0, 3, 1, 2)

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> Codes:
        return Codes(self.logits(z).argmax(1).unsqueeze(-1))

    def decode(self, codes: Codes) -> torch.Tensor:
        return self._lookup(codes.indices[..., 0])

    def code_spec(self) -> CodeSpec:
        return CodeSpec(alphabet_sizes=[len(self.codebook)])


@hookimpl
def laser_register_bottlenecks(register: Register) -> None:
    register("gumbel", GumbelQuantizer, config=GumbelConfig)
