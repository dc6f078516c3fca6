"""The '__name__' bottleneck: each latent channel squashed to (-1, 1) and rounded to one of
``levels`` evenly spaced values, with a straight-through gradient."""

from __future__ import annotations

import torch
from pydantic import Field

from laser_core import (
    Bottleneck,
    BottleneckOutput,
    BuildContext,
    Codes,
    CodeSpec,
    ComponentConfig,
    PositiveInt,
    Register,
    hookimpl,
    straight_through,
)


class ScalarQuantizerConfig(ComponentConfig):
    levels: PositiveInt = Field(8, ge=2, description="values each latent channel can take")


class ScalarQuantizer(Bottleneck):
    """Finite scalar quantizer: each latent channel rounded to one of a few evenly spaced values.

    The registered class is the factory: LASER builds it as ``ScalarQuantizer(config, context)``
    and ``laser plugins`` shows the first line above."""

    def __init__(self, config: ScalarQuantizerConfig, context: BuildContext):
        super().__init__()
        self.dim, self.levels = context.latent_dim, config.levels

    def _bounded(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(z.float())

    def encode(self, z: torch.Tensor) -> Codes:
        """Indices (batch, height, width, dim), one symbol per channel."""
        steps = torch.round((self._bounded(z) + 1) / 2 * (self.levels - 1))
        return Codes(indices=steps.long().permute(0, 2, 3, 1))

    def decode(self, codes: Codes) -> torch.Tensor:
        values = codes.indices.float() / (self.levels - 1) * 2 - 1
        return values.permute(0, 3, 1, 2)

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        bounded = self._bounded(z)
        codes = self.encode(z)
        quantized = straight_through(self.decode(codes), bounded)  # bounded's gradient
        return BottleneckOutput(quantized.to(z.dtype), z.new_zeros(()).float(), codes)

    def code_spec(self) -> CodeSpec:
        return CodeSpec(alphabet_sizes=[self.levels] * self.dim)


@hookimpl
def laser_register_bottlenecks(register: Register) -> None:
    register("__name__", ScalarQuantizer, config=ScalarQuantizerConfig)
