"""``vq-rate``: product vector quantization trained for rate, an entropy-constrained VQ (Chou,
Lookabaugh and Gray, 1989) coding whole images.

The latent channels are cut into groups of ``group_dim``; each group has its own codebook of
``codebook_size`` codes (the ``vq`` codebook: k-means start, EMA or gradient codes) and its own
learnt categorical prior p over them. A latent vector takes the code minimising
||z - code||² + β (-log2 p(code)), β = ``bit_cost`` x λ (the recipe's ``losses.rate``), so
assignment itself trades distortion for bits; the prior's logits learn from the rate term, the
chosen codes' -log2 p reported as ``bits``. The groups multiply the codebook (product VQ): 96
channels in groups of 4 with 256 codes are up to 24 x 8 = 192 bits per latent position, 0.75
bits per pixel at a downsampling of 16, and the learnt prior codes fewer.

``laser compress`` codes one stage, the code ids (groups, height, width), one table row per
group: the prior's own probabilities as integer frequencies.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import nn

from laser_core import (
    BottleneckOutput,
    BuildContext,
    CodebookSize,
    Codes,
    CodeSpec,
    EntropyCodedBottleneck,
    LaserError,
    NonNegativeFloat,
    PositiveInt,
    Register,
    full_precision,
    hookimpl,
    straight_through,
    to_latent,
    to_vectors,
)
from laser_core.ops import CodingTable, to_frequencies

from .codebook import Codebook, CodebookConfig


class VQRateConfig(CodebookConfig):
    codebook_size: CodebookSize = Field(64, description="codes in each group's codebook")
    group_dim: PositiveInt = Field(
        4, description="latent channels per group; each group is one code id per position"
    )
    bit_cost: NonNegativeFloat = Field(
        3.0,
        description="β / λ: what one bit weighs against squared latent distance in the "
        "assignment, per unit of losses.rate (3: the image channels, exact when the decoder "
        "keeps squared error); 0: nearest code, as vq",
    )
    revive_dead_codes: bool = Field(
        False,
        description="replace each dead code by a random latent of the current batch; off: a "
        "code the rate prices out stays unused, which is what saves the bits",
    )


class RateVectorQuantizer(EntropyCodedBottleneck):
    """Latents (batch, dim, height, width) -> per group of group_dim channels the code that
    minimises distortion + β bits; codes (batch, height, width, groups)."""

    def __init__(self, config: VQRateConfig, context: BuildContext):
        super().__init__()
        self.dim, self.group_dim = context.latent_dim, config.group_dim
        if self.dim % self.group_dim:
            raise LaserError(
                f"bottleneck 'vq-rate': group_dim {self.group_dim} does not divide the "
                f"encoder's latent_dim {self.dim}; pick a divisor of {self.dim}"
            )
        self.groups, self.size = self.dim // self.group_dim, config.codebook_size
        self.codebooks = nn.ModuleList(
            Codebook(self.size, self.group_dim, config) for _ in range(self.groups)
        )
        self.logits = nn.Parameter(torch.zeros(self.groups, self.size))
        self.bit_weight = config.bit_cost * context.rate_weight

    def code_bits(self) -> torch.Tensor:
        """-log2 p of every code of every group (groups, codebook_size) under the prior."""
        return -torch.log_softmax(self.logits.float(), dim=1) / math.log(2)

    def assign(self, vectors: torch.Tensor) -> torch.Tensor:
        """Vectors (N, dim) -> code ids (N, groups) minimising distortion + β bits."""
        costs = self.bit_weight * self.code_bits().detach() if self.bit_weight else None
        parts = vectors.view(len(vectors), self.groups, self.group_dim)
        return torch.stack(
            [
                codebook.assign(parts[:, g], None if costs is None else costs[g])
                for g, codebook in enumerate(self.codebooks)
            ],
            dim=1,
        )

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Code ids (..., groups) -> the codes side by side (..., dim)."""
        return torch.cat(
            [codebook.lookup(indices[..., g]) for g, codebook in enumerate(self.codebooks)], -1
        )

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        batch, _, height, width = z.shape
        with full_precision(z):
            vectors = to_vectors(z)
            parts = vectors.view(len(vectors), self.groups, self.group_dim)
            if self.training:
                for g, codebook in enumerate(self.codebooks):
                    codebook.initialize(parts[:, g])
            indices = self.assign(vectors)
            codes = self.lookup(indices)
            loss = sum(
                codebook.loss(parts[:, g], codes[:, g * self.group_dim : (g + 1) * self.group_dim])
                for g, codebook in enumerate(self.codebooks)
            )
            if self.training:
                for g, codebook in enumerate(self.codebooks):
                    codebook.update(parts[:, g].detach(), indices[:, g])
            quantized = to_latent(straight_through(codes, vectors), z.shape).to(z.dtype)
            bits = self.code_bits().gather(1, indices.T).T.reshape(batch, -1).sum(1)
        usage = [codebook.stats(indices[:, g]) for g, codebook in enumerate(self.codebooks)]
        stats = {key: torch.stack([u[key] for u in usage]).mean() for key in usage[0]}
        return BottleneckOutput(
            quantized=quantized,
            loss=loss / self.groups,
            codes=Codes(indices.view(batch, height, width, self.groups)),
            stats=stats,
            bits=bits,
        )

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> Codes:
        batch, _, height, width = z.shape
        with full_precision(z):
            indices = self.assign(to_vectors(z))
        return Codes(indices.view(batch, height, width, self.groups))

    def decode(self, codes: Codes) -> torch.Tensor:
        return self.lookup(codes.indices).permute(0, 3, 1, 2)

    def code_spec(self) -> CodeSpec:
        return CodeSpec(alphabet_sizes=[self.size] * self.groups)

    def after_optimizer_step(self) -> list[tuple[nn.Parameter, torch.Tensor]]:
        return [pair for codebook in self.codebooks for pair in codebook.after_optimizer_step()]

    def coding_tables(self) -> list[CodingTable]:
        frequencies = to_frequencies(self.logits.detach())
        offsets = torch.zeros(self.groups, dtype=torch.long)
        return [CodingTable(frequencies, offsets, torch.full_like(offsets, self.size))]

    def stage_symbols(self, z: torch.Tensor) -> list[torch.Tensor]:
        return [self.encode(z).indices.permute(0, 3, 1, 2)]

    def stage_shapes(self, grid: tuple[int, int]) -> list[tuple[int, int, int]]:
        return [(self.groups, *grid)]

    def stage_rows(
        self, stage: int, decoded: list[torch.Tensor], grid: tuple[int, int]
    ) -> torch.Tensor:
        return torch.arange(self.groups)[:, None, None].expand(self.groups, *grid)

    def dequantize(self, decoded: list[torch.Tensor]) -> torch.Tensor:
        return self.lookup(decoded[0].permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


@hookimpl
def laser_register_bottlenecks(register: Register) -> None:
    register("vq-rate", RateVectorQuantizer, config=VQRateConfig)
