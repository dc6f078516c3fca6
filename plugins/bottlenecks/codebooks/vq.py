"""``vq``: vector quantization (van den Oord et al., 2017), each latent vector replaced by its
nearest code, with codes learnt as running means (EMA) or by a codebook loss."""

from __future__ import annotations

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
    Register,
    full_precision,
    hookimpl,
    straight_through,
    to_latent,
    to_vectors,
)

from .codebook import Codebook, CodebookConfig


class VQConfig(CodebookConfig):
    codebook_size: CodebookSize = Field(512, description="number of codes")
    normalize: bool = Field(
        False, description="l2-normalise latents and codes, so nearest means highest cosine"
    )


class VectorQuantizer(Bottleneck):
    """Vector quantization: nearest of codebook_size codes, EMA or gradient codebook.

    Latents (batch, dim, height, width) -> nearest of codebook_size codes at each position;
    codes (batch, height, width, 1). The straight-through estimator hands the encoder the
    decoder's gradient unchanged."""

    def __init__(self, config: VQConfig, context: BuildContext):
        super().__init__()
        self.dim, self.normalize = context.latent_dim, config.normalize
        self.codebook = Codebook(config.codebook_size, self.dim, config, config.normalize)

    def _vectors(self, z: torch.Tensor) -> torch.Tensor:
        x = to_vectors(z)
        return F.normalize(x, dim=1) if self.normalize else x

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        with full_precision(z):
            x = self._vectors(z)
            if self.training:
                self.codebook.initialize(x)
            indices = self.codebook.assign(x)
            codes = self.codebook.lookup(indices)
            loss = self.codebook.loss(x, codes)
            if self.training:
                self.codebook.update(x.detach(), indices)
            quantized = to_latent(straight_through(codes, x), z.shape).to(z.dtype)
        batch, _, height, width = z.shape
        return BottleneckOutput(
            quantized=quantized,
            loss=loss,
            codes=Codes(indices.view(batch, height, width, 1)),
            stats=self.codebook.stats(indices),
        )

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> Codes:
        batch, _, height, width = z.shape
        with full_precision(z):
            indices = self.codebook.assign(self._vectors(z))
        return Codes(indices.view(batch, height, width, 1))

    def decode(self, codes: Codes) -> torch.Tensor:
        return self.codebook.lookup(codes.indices[..., 0]).permute(0, 3, 1, 2)

    def code_spec(self) -> CodeSpec:
        return CodeSpec(alphabet_sizes=[self.codebook.size])

    def after_optimizer_step(self) -> list[tuple[nn.Parameter, torch.Tensor]]:
        return self.codebook.after_optimizer_step()


@hookimpl
def laser_register_bottlenecks(register: Register) -> None:
    register("vq", VectorQuantizer, config=VQConfig)
