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

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from laser_core import BuildContext, Register, hookimpl, straight_through

from .implicit_codebook import MAX_CODES, ImplicitCodebook, ImplicitCodebookConfig


class LFQConfig(ImplicitCodebookConfig):
    dims: int = Field(10, ge=1, description="binary dimensions, each quantized to ±1: 2^dims codes")
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

    @property
    def levels_per_dimension(self) -> list[int]:
        return [2] * self.dims

    @model_validator(mode="after")
    def _codebook_entropy_fits(self) -> LFQConfig:
        if self.codebook_entropy_weight > 0 and 2**self.dims > MAX_CODES:
            raise ValueError(
                f"dims {self.dims} makes 2^{self.dims} codes, but the codebook entropy "
                "(codebook_entropy_weight > 0) holds (positions, 2^dims) log-probabilities, so "
                f"it allows at most {MAX_CODES:,} codes (dims <= {MAX_CODES.bit_length() - 1}); "
                "use fewer dims, or codebook_entropy_weight: 0 with codes: per-dimension"
            )
        return self


def binary_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(Bernoulli(sigmoid(l))) in nats, elementwise: softplus(l) - l sigmoid(l), finite with
    finite gradients where sigmoid saturates."""
    return F.softplus(logits) - logits * torch.sigmoid(logits)


class LookupFreeQuantizer(ImplicitCodebook):
    """Lookup-free quantization: the sign of each dimension, with an entropy penalty.

    Latents (batch, dim, height, width) -> signs of ``dims`` projected dimensions; codes
    (batch, height, width, 1) or (batch, height, width, dims), bit i = 1 where dimension i is
    positive (index = Σ bit_i 2^i)."""

    bits: torch.Tensor

    def __init__(self, config: LFQConfig, context: BuildContext):
        super().__init__(context.latent_dim, config.levels_per_dimension, config)
        self.config = config
        if config.codebook_entropy_weight > 0:  # (2^dims, dims): bit i of every code
            every_code = self.number_to_digits(torch.arange(2**config.dims).unsqueeze(1))
            self.register_buffer("bits", every_code.float(), persistent=False)

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

    def quantize(
        self, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Signs with x's gradient; the commitment and entropy terms, and the entropies."""
        config = self.config
        digits = self.digits(x)
        signs = self.values(digits)
        entropies = self.entropies(x)
        loss = (
            config.commitment_weight * F.mse_loss(x, signs)
            + config.sample_entropy_weight * entropies["sample_entropy"]
            - config.codebook_entropy_weight * entropies.get("codebook_entropy", 0.0)
        )
        stats = {key: value.detach() for key, value in entropies.items()}
        return straight_through(signs, x), digits, loss, stats

    def digits(self, vectors: torch.Tensor) -> torch.Tensor:
        """Bit i = 1 where dimension i is positive."""
        return (vectors > 0).long()

    def values(self, digits: torch.Tensor) -> torch.Tensor:
        """Bits -> signs ±1."""
        return digits.float() * 2 - 1


@hookimpl
def laser_register_bottlenecks(register: Register) -> None:
    register("lfq", LookupFreeQuantizer, config=LFQConfig)
