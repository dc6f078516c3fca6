"""``gaussian``: the continuous baseline, a β-VAE posterior (Higgins et al., 2017). A 1x1
convolution predicts a mean and log-variance per latent element (or, with ``projection:
false``, the encoder's output already holds them side by side, as AutoencoderKL's does);
training decodes a reparameterised sample, eval the mean. Its code is the mean itself, with no
indices.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from laser_core import (
    Bottleneck,
    BottleneckOutput,
    BuildContext,
    Codes,
    CodeSpec,
    ComponentConfig,
    LaserError,
    NonNegativeFloat,
    Register,
    full_precision,
    hookimpl,
)


class GaussianConfig(ComponentConfig):
    kl_weight: NonNegativeFloat = Field(
        1.0,
        description="β of the β-VAE: weight of KL(N(mean, variance) || N(0, 1)), averaged "
        "over latent elements",
    )
    projection: bool = Field(
        True,
        description="a 1x1 convolution predicts mean and log-variance from each latent; false: "
        "the latent's first half of channels is the mean, the second the log-variance",
    )


class GaussianBottleneck(Bottleneck):
    """β-VAE Gaussian posterior: the continuous baseline, means as codes.

    Latents (batch, dim, height, width) -> a diagonal Gaussian per position; codes carry the
    means as values (batch, height, width, dim)."""

    def __init__(self, config: GaussianConfig, context: BuildContext):
        super().__init__()
        dim = context.latent_dim
        if not config.projection and dim % 2:
            raise LaserError(
                f"bottleneck 'gaussian' with projection: false splits the encoder's {dim} "
                "channels into means and log-variances, so it needs an even latent_dim"
            )
        self.dim, self.kl_weight = dim, config.kl_weight
        self.projection = nn.Conv2d(dim, 2 * dim, 1) if config.projection else None

    @property
    def output_dim(self) -> int:
        return self.dim if self.projection is not None else self.dim // 2

    def moments(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance, each (batch, output_dim, height, width), in fp32."""
        with full_precision(z):
            moments = z.float() if self.projection is None else self.projection(z.float())
            mean, log_variance = moments.chunk(2, dim=1)
        # exp() of an untrained projection's output must neither overflow nor vanish.
        return mean, log_variance.clamp(-30.0, 20.0)

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        mean, log_variance = self.moments(z)
        sample = mean
        if self.training:
            sample = mean + (0.5 * log_variance).exp() * torch.randn_like(mean)
        kl = 0.5 * (mean.square() + log_variance.exp() - 1 - log_variance).mean()
        return BottleneckOutput(
            quantized=sample.to(z.dtype),
            loss=self.kl_weight * kl,
            codes=Codes(indices=None, values=mean.detach().permute(0, 2, 3, 1)),
            stats={"kl": kl.detach()},
        )

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> Codes:
        mean, _ = self.moments(z)
        return Codes(indices=None, values=mean.permute(0, 2, 3, 1))

    def decode(self, codes: Codes) -> torch.Tensor:
        return codes.values.permute(0, 3, 1, 2)

    def code_spec(self) -> CodeSpec:
        return CodeSpec(alphabet_sizes=[], has_values=True)


@hookimpl
def laser_register_bottlenecks(register: Register) -> None:
    register("gaussian", GaussianBottleneck, config=GaussianConfig)
