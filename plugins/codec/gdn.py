"""``gdn-analysis`` and ``gdn-synthesis``: Ballé et al.'s transforms for learned image codecs.

Four 5x5 convolutions of stride 2 with GDN between them (inverse GDN in the synthesis), as in
Ballé et al. (2017, 2018). GDN normalises each position over channels only, never over the
image, so the transforms are fully convolutional: a model trained on crops codes a whole
photograph of any size in one piece, with no tiles (downsampling 16).
"""

from __future__ import annotations

from itertools import pairwise

from pydantic import Field
from torch import nn

from laser_core import (
    BuildContext,
    ComponentConfig,
    LaserError,
    PositiveInt,
    Register,
    hookimpl,
)

from .entropy_layers import GDN

STAGES = 4


class AnalysisConfig(ComponentConfig):
    channels: PositiveInt = Field(128, description="N: channels between the convolutions")
    latent_dim: PositiveInt = Field(192, description="M: channels of the latents")


class SynthesisConfig(ComponentConfig):
    channels: PositiveInt = Field(128, description="N: channels between the convolutions")


def _down(inputs: int, outputs: int) -> nn.Conv2d:
    return nn.Conv2d(inputs, outputs, 5, stride=2, padding=2)


def _up(inputs: int, outputs: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(inputs, outputs, 5, stride=2, padding=2, output_padding=1)


class GDNAnalysis(nn.Sequential):
    """Images (batch, C, H, W) -> latents (batch, latent_dim, H/16, W/16)."""

    def __init__(self, config: AnalysisConfig, context: BuildContext):
        widths = [context.image_channels] + [config.channels] * (STAGES - 1)
        layers: list[nn.Module] = []
        for inputs, outputs in pairwise(widths):
            layers += [_down(inputs, outputs), GDN(outputs)]
        super().__init__(*layers, _down(config.channels, config.latent_dim))
        self.latent_dim, self.downsampling = config.latent_dim, 2**STAGES


class GDNSynthesis(nn.Sequential):
    """Latents (batch, latent_dim, h, w) -> images (batch, C, 16h, 16w)."""

    def __init__(self, config: SynthesisConfig, context: BuildContext):
        if context.downsampling != 2**STAGES:
            raise LaserError(
                f"decoder 'gdn-synthesis' upsamples by {2**STAGES}, but the encoder downsamples "
                f"by {context.downsampling}; use encoder 'gdn-analysis'"
            )
        widths = [context.latent_dim] + [config.channels] * (STAGES - 1)
        layers: list[nn.Module] = []
        for inputs, outputs in pairwise(widths):
            layers += [_up(inputs, outputs), GDN(outputs, inverse=True)]
        super().__init__(*layers, _up(config.channels, context.image_channels))


@hookimpl
def laser_register_encoders(register: Register) -> None:
    register("gdn-analysis", GDNAnalysis, config=AnalysisConfig)


@hookimpl
def laser_register_decoders(register: Register) -> None:
    register("gdn-synthesis", GDNSynthesis, config=SynthesisConfig)
