"""``lfq``: lookup-free quantization (Yu et al., 2023, MAGVIT-v2, "Language Model Beats
Diffusion: Tokenizer is Key to Visual Generation"). Each of ``dims`` dimensions is quantized to
its sign, ±1, with a straight-through gradient; the codebook is the implicit {-1, 1}^dims, so
there is no lookup and nothing to learn but the optional projections in and out (1x1, present
when latent_dim != dims).

Codes stay in use through the entropy penalty. With q(c | x) = softmax over the 2^dims codes c
of -‖x - c‖² / τ, training minimises the mean per-sample entropy E[H(q(· | x))], so each
position commits to a code, and maximises the codebook entropy H(E[q(· | x)]) of the batch
average, so the batch spreads over the codebook. Because ‖x - c‖² = ‖x‖² - 2 x·c + dims, q
factorises into independent bits, P(c_i = +1) = sigmoid(4 x_i / τ): the per-sample entropy is
a sum of binary entropies; the codebook entropy needs all 2^dims codes and is computed from
their log-probabilities by logsumexp, finite even where probabilities underflow. Both run in
fp32 and average over this process's batch.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from laser_core import (
    Bottleneck,
    BottleneckOutput,
    BuildContext,
    Codes,
    CodeSpec,
    ComponentConfig,
    Register,
    code_counts,
    full_precision,
    hookimpl,
    to_latent,
    to_vectors,
    usage_stats,
)

MAX_INDEX_DIMS = 16
"""At most 2^16 codes when the codebook is handled whole: a combined index is one alphabet of
the entropy coder and the codebook-usage metric (one count per symbol, per example for the
metric), and the codebook entropy holds (positions, 2^dims) log-probabilities."""


class LFQConfig(ComponentConfig):
    dims: int = Field(10, ge=1, description="binary dimensions, each quantized to ±1: 2^dims codes")
    codes: Literal["index", "per-dimension"] = Field(
        "index",
        description="index: one symbol per position, the code's number among 2^dims; "
        "per-dimension: one bit per dimension (alphabets of 2)",
    )
    commitment_weight: float = Field(
        0.25, ge=0, description="weight of ||x - sg(sign(x))||², which keeps latents near ±1"
    )
    sample_entropy_weight: float = Field(
        0.1, ge=0, description="weight of the per-sample entropy E[H(q(c | x))], minimised"
    )
    codebook_entropy_weight: float = Field(
        0.1, ge=0, description="weight of the codebook entropy H(E[q(c | x)]), maximised"
    )
    entropy_temperature: float = Field(
        0.01, gt=0, description="τ of q(c | x) = softmax(-||x - c||² / τ)"
    )

    @model_validator(mode="after")
    def _whole_codebook_fits(self) -> LFQConfig:
        needs = [
            reason
            for reason, applies in (
                ("codes: index", self.codes == "index"),
                ("codebook_entropy_weight > 0", self.codebook_entropy_weight > 0),
            )
            if applies
        ]
        if self.dims > MAX_INDEX_DIMS and needs:
            raise ValueError(
                f"dims {self.dims} makes 2^{self.dims} codes, but {' and '.join(needs)} handle "
                f"the codebook whole, which allows at most 2^{MAX_INDEX_DIMS} (an entropy-coder "
                f"alphabet; (positions, 2^dims) probabilities for the codebook entropy); use "
                f"dims <= {MAX_INDEX_DIMS}, or codes: per-dimension with "
                "codebook_entropy_weight: 0"
            )
        return self


def binary_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(Bernoulli(sigmoid(l))) in nats, elementwise: softplus(l) - l sigmoid(l), finite with
    finite gradients where sigmoid saturates."""
    return F.softplus(logits) - logits * torch.sigmoid(logits)


class LookupFreeQuantizer(Bottleneck):
    """Lookup-free quantization: the sign of each dimension, with an entropy penalty.

    Latents (batch, dim, height, width) -> signs of ``dims`` projected dimensions; codes
    (batch, height, width, 1) or (batch, height, width, dims), bit i = 1 where dimension i is
    positive (index = Σ bit_i 2^i)."""

    powers: torch.Tensor
    bits: torch.Tensor

    def __init__(self, config: LFQConfig, context: BuildContext):
        super().__init__()
        dim = context.latent_dim
        self.dim, self.config = dim, config
        self.per_dimension = config.codes == "per-dimension"
        projected = dim != config.dims
        self.project_in = nn.Linear(dim, config.dims) if projected else nn.Identity()
        self.project_out = nn.Linear(config.dims, dim) if projected else nn.Identity()
        self.register_buffer("powers", 2 ** torch.arange(config.dims), persistent=False)
        if config.codebook_entropy_weight > 0:  # (2^dims, dims): bit i of every code
            codes = torch.arange(2**config.dims).unsqueeze(1)
            self.register_buffer("bits", (codes // self.powers % 2).float(), persistent=False)

    def entropies(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Mean per-sample entropy and, when weighted, codebook entropy, in nats, of q(c | x)
        for vectors x (N, dims) in fp32."""
        logits = 4 * x / self.config.entropy_temperature  # log P(c_i = +1) - log P(c_i = -1)
        found = {"sample_entropy": binary_entropy(logits).sum(1).mean()}
        if self.config.codebook_entropy_weight > 0:
            # log q(c | x) = Σ_i log sigmoid(-l_i) + Σ_{i: c_i = +1} l_i
            log_q = F.logsigmoid(-logits).sum(1, keepdim=True) + logits @ self.bits.t()
            log_mean = torch.logsumexp(log_q, 0) - math.log(len(x))
            found["codebook_entropy"] = -(log_mean.exp() * log_mean).sum()
        return found

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        config = self.config
        with full_precision(z):
            x = self.project_in(to_vectors(z))
            signs = torch.where(x > 0, 1.0, -1.0)
            entropies = self.entropies(x)
            loss = (
                config.commitment_weight * F.mse_loss(x, signs)
                + config.sample_entropy_weight * entropies["sample_entropy"]
                - config.codebook_entropy_weight * entropies.get("codebook_entropy", 0.0)
            )
            # Adding x - sg(x), exactly zero, keeps the signs' values and x's gradient.
            quantized = self.project_out(signs + (x - x.detach()))
            quantized = to_latent(quantized, z.shape).to(z.dtype)
        codes = self._codes(signs, z.shape)
        stats = {key: value.detach() for key, value in entropies.items()}
        return BottleneckOutput(quantized, loss, codes, {**stats, **self._usage(codes.indices)})

    def _codes(self, signs: torch.Tensor, shape: torch.Size) -> Codes:
        batch, _, height, width = shape
        bits = (signs > 0).long()
        if not self.per_dimension:
            bits = (bits * self.powers).sum(1, keepdim=True)
        return Codes(bits.view(batch, height, width, -1))

    def _usage(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """Usage of the combined index, or averaged over bits, as the codes are laid out."""
        if not self.per_dimension:
            return usage_stats(code_counts(indices, 2**self.config.dims))
        slots = [usage_stats(code_counts(indices[..., i], 2)) for i in range(self.config.dims)]
        return {key: torch.stack([s[key] for s in slots]).mean() for key in slots[0]}

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> Codes:
        with full_precision(z):
            x = self.project_in(to_vectors(z))
        return self._codes(torch.where(x > 0, 1.0, -1.0), z.shape)

    def decode(self, codes: Codes) -> torch.Tensor:
        bits = codes.indices
        if not self.per_dimension:
            bits = bits // self.powers % 2  # (..., 1) -> (..., dims)
        signs = bits.float() * 2 - 1
        with full_precision(signs):
            return self.project_out(signs).permute(0, 3, 1, 2)

    def code_spec(self) -> CodeSpec:
        if self.per_dimension:
            return CodeSpec(alphabet_sizes=[2] * self.config.dims)
        return CodeSpec(alphabet_sizes=[2**self.config.dims])


@hookimpl
def laser_register_bottlenecks(register: Register) -> None:
    register("lfq", LookupFreeQuantizer, config=LFQConfig)
