"""``rq``: residual quantization (Zeghidour et al., 2021; Lee et al., 2022). Each level
quantizes what the levels before it left over, so a position's latent is the sum of one code
per level and any prefix of the levels is a coarser reconstruction.

Every level is a :class:`.codebook.Codebook`, with vq's k-means
initialisation (residual by residual on the first batch), EMA or gradient learning and
dead-code revival.
"""

from __future__ import annotations

import random
from typing import Annotated

import torch
from pydantic import Field, model_validator
from torch import nn

from laser_core import (
    AtMost,
    Bottleneck,
    BottleneckOutput,
    BuildContext,
    CodebookSize,
    Codes,
    CodeSpec,
    FiniteFloat,
    PositiveInt,
    Register,
    full_precision,
    hookimpl,
    straight_through,
    to_latent,
    to_vectors,
)

from .codebook import Codebook, CodebookConfig

MAX_LEVELS = 64


class RQConfig(CodebookConfig):
    levels: Annotated[
        PositiveInt,
        AtMost(
            MAX_LEVELS,
            "each level is a codebook searched one after the other on every batch, and the "
            "residual left after a few dozen levels is rounding noise; RQ-VAE uses 4 to 16",
        ),
    ] = Field(4, description="codes per position, each for the previous residual")
    codebook_size: CodebookSize | list[CodebookSize] = Field(
        256, description="codes per level: one number for every level, or a list, one per level"
    )
    shared_codebook: bool = Field(
        False, description="one codebook serves every level (k-means placed on the latents)"
    )
    quantize_dropout: FiniteFloat = Field(
        0.0,
        ge=0,
        le=1,
        description="probability that a training batch is reconstructed from a random prefix "
        "of the levels only, so that every prefix learns to decode",
    )

    @model_validator(mode="after")
    def _sizes_fit_levels(self) -> RQConfig:
        sizes = self.level_sizes
        if len(sizes) != self.levels:
            raise ValueError(
                f"codebook_size lists {len(sizes)} sizes for {self.levels} levels; give one "
                "size per level, or a single number for all"
            )
        if self.shared_codebook and len(set(sizes)) > 1:
            raise ValueError(f"a shared codebook has one size, not {sizes}; give one number")
        return self

    @property
    def level_sizes(self) -> list[int]:
        if isinstance(self.codebook_size, int):
            return [self.codebook_size] * self.levels
        return list(self.codebook_size)


class ResidualQuantizer(Bottleneck):
    """Residual quantization: one code per level for what earlier levels left.

    Latents (batch, dim, height, width) -> one code per level at each position; codes
    (batch, height, width, levels). The straight-through estimator applies to the sum of
    the levels, so the encoder gets the decoder's gradient unchanged."""

    def __init__(self, config: RQConfig, context: BuildContext):
        super().__init__()
        self.dim, self.levels = context.latent_dim, config.levels
        self.shared_codebook, self.quantize_dropout = (
            config.shared_codebook,
            config.quantize_dropout,
        )
        sizes = config.level_sizes[:1] if config.shared_codebook else config.level_sizes
        self.codebooks = nn.ModuleList(Codebook(size, self.dim, config) for size in sizes)

    def codebook(self, level: int) -> Codebook:
        return self.codebooks[0 if self.shared_codebook else level]

    def _quantize(
        self, x: torch.Tensor, initialize: bool = False
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        """Per level, for fp32 vectors x (N, dim): the residual it quantized (N, dim), carrying
        x's gradient, the chosen indices (N,) and their codes (N, dim)."""
        residuals, indices, codes = [], [], []
        residual = x
        for level in range(self.levels):
            codebook = self.codebook(level)
            if initialize:
                codebook.initialize(residual.detach())
            index = codebook.assign(residual)
            code = codebook.lookup(index)
            residuals.append(residual)
            indices.append(index)
            codes.append(code)
            residual = residual - code.detach()
        return residuals, indices, codes

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        """Every level quantizes and learns on every batch; quantize dropout only shortens the
        sum the decoder sees, so that all codebooks keep receiving gradients (as DDP wants)."""
        with full_precision(z):
            x = to_vectors(z)
            residuals, indices, codes = self._quantize(x, initialize=self.training)
            loss = sum(
                self.codebook(level).loss(residual, code)
                for level, (residual, code) in enumerate(zip(residuals, codes, strict=True))
            )
            if self.training:
                self._update([r.detach() for r in residuals], indices)
            total = sum(codes[: self._levels_in_use()])
            quantized = to_latent(straight_through(total, x), z.shape).to(z.dtype)
        batch, _, height, width = z.shape
        stats = {
            f"{key}_l{level}": value
            for level, index in enumerate(indices)
            for key, value in self.codebook(level).stats(index).items()
        }
        return BottleneckOutput(
            quantized=quantized,
            loss=loss,
            codes=Codes(torch.stack(indices, 1).view(batch, height, width, self.levels)),
            stats=stats,
        )

    def _update(self, residuals: list[torch.Tensor], indices: list[torch.Tensor]) -> None:
        """One statistics update per codebook and batch, also when levels share a codebook."""
        if self.shared_codebook:
            self.codebooks[0].update(torch.cat(residuals), torch.cat(indices))
            return
        for codebook, residual, index in zip(self.codebooks, residuals, indices, strict=True):
            codebook.update(residual, index)

    def _levels_in_use(self) -> int:
        # Python's generator: the choice steers Python code, so a tensor would cost a host sync.
        # Seeded alike on every process (accelerate's set_seed) and saved in checkpoints.
        if self.training and random.random() < self.quantize_dropout:
            return random.randint(1, self.levels)
        return self.levels

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> Codes:
        batch, _, height, width = z.shape
        with full_precision(z):
            _, indices, _ = self._quantize(to_vectors(z))
        return Codes(torch.stack(indices, 1).view(batch, height, width, self.levels))

    def decode(self, codes: Codes, levels: int | None = None) -> torch.Tensor:
        """The latent (batch, dim, height, width) of the first ``levels`` levels of ``codes``
        (all by default): the sum of their code vectors."""
        levels = self.levels if levels is None else levels
        if not 1 <= levels <= self.levels:
            raise ValueError(f"levels must lie in 1..{self.levels}, got {levels}")
        total = sum(
            self.codebook(level).lookup(codes.indices[..., level]) for level in range(levels)
        )
        return total.permute(0, 3, 1, 2)

    def code_spec(self) -> CodeSpec:
        return CodeSpec(alphabet_sizes=[self.codebook(level).size for level in range(self.levels)])

    def after_optimizer_step(self) -> list[tuple[nn.Parameter, torch.Tensor]]:
        return [
            revived for codebook in self.codebooks for revived in codebook.after_optimizer_step()
        ]


@hookimpl
def laser_register_bottlenecks(register: Register) -> None:
    register("rq", ResidualQuantizer, config=RQConfig)
