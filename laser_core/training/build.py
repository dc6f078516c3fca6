"""Recipe -> components: the only place that knows how encoder, bottleneck and decoder fit."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from laser_core.errors import LaserError
from laser_core.plugin.contracts import BottleneckOutput, BuildContext, DataSplits
from laser_core.plugin.registry import Component, Registry, default_registry
from laser_core.recipes.blocks import singular
from laser_core.recipes.model import Block, Recipe
from laser_core.training.losses import ImageLosses, smallest_side
from laser_core.training.perceptual import build_lpips


def list_components(kind: str, registry: Registry | None = None) -> list[Component]:
    """Every component of ``kind`` the installed plugins offer."""
    return (registry or default_registry()).of_kind(kind)


def build_component(
    kind: str,
    config: dict[str, Any] | Block,
    context: BuildContext | None = None,
    registry: Registry | None = None,
) -> Any:
    """Build one component, e.g. ``build_component("bottlenecks", {"name": "vq"})``."""
    if isinstance(config, Block):
        block = config
    else:
        params = dict(config)
        name = params.pop("name", None)
        if not isinstance(name, str):
            raise LaserError(f"build_component needs a 'name' key, got {config!r}")
        component = (registry or default_registry()).get(kind, name)
        try:
            block = Block(component, component.config.model_validate(params))
        except ValidationError as error:
            raise LaserError(f"{singular(kind)} '{name}': {error}") from None
    return block.component.factory(block.config, context or BuildContext())


class Autoencoder(nn.Module):
    """encoder -> bottleneck -> decoder; the unit that is trained, saved and exported."""

    def __init__(self, encoder: nn.Module, bottleneck: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder, self.bottleneck, self.decoder = encoder, bottleneck, decoder

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, BottleneckOutput]:
        output = self.bottleneck(self.encoder(images))
        return self.decoder(output.quantized), output


def build_data(recipe: Recipe) -> DataSplits:
    return build_component("datasets", recipe.data)


def build_model(recipe: Recipe, splits: DataSplits) -> tuple[Autoencoder, BuildContext]:
    """Build the three parts with what each needs of the others, and check they fit."""
    context = BuildContext(image_channels=splits.image_channels, image_size=splits.image_size)
    encoder = build_component("encoders", recipe.encoder, context)
    context = replace(context, latent_dim=encoder.latent_dim, downsampling=encoder.downsampling)
    bottleneck = build_component("bottlenecks", recipe.bottleneck, context)
    context = replace(context, code_spec=bottleneck.code_spec())
    decoder = build_component("decoders", recipe.decoder, context)
    model = Autoencoder(encoder, bottleneck, decoder)
    _check_shapes_fit(model, context, recipe)
    return model, context


def _check_shapes_fit(model: Autoencoder, context: BuildContext, recipe: Recipe) -> None:
    shape = (1, context.image_channels, context.image_size, context.image_size)
    probe = torch.zeros(shape)
    with torch.no_grad():
        latents = model.encoder(probe)
        reconstruction = model.decoder(latents)
    if reconstruction.shape != probe.shape:
        raise LaserError(
            f"{recipe.source}: decoder '{recipe.decoder.name}' returns "
            f"{tuple(reconstruction.shape)} for images {shape} (encoder "
            f"'{recipe.encoder.name}' gives latents {tuple(latents.shape)}); "
            "make the decoder's upsampling match the encoder's downsampling"
        )


def build_metrics(recipe: Recipe, context: BuildContext) -> dict[str, Any]:
    return {block.name: build_component("metrics", block, context) for block in recipe.metrics}


def build_losses(recipe: Recipe, context: BuildContext) -> ImageLosses:
    """The image losses; LPIPS is checked here (image size, cached weights), before training."""
    config = recipe.losses
    coarsest = smallest_side(context.image_size, config.resolutions)
    if (config.dct or config.gradient) and coarsest < 2:
        raise LaserError(
            f"{recipe.source}: losses.resolutions={config.resolutions} halves images of "
            f"{context.image_size} pixels below 2 pixels; lower it"
        )
    perceptual = None
    if config.perceptual:
        perceptual = build_lpips(
            config.perceptual_net,
            config.perceptual_backbone,
            context.image_channels,
            context.image_size,
            "losses.perceptual",
        )
    return ImageLosses(config, perceptual)


def build_discriminator(recipe: Recipe, context: BuildContext) -> nn.Module | None:
    if recipe.discriminator is None:
        return None
    return build_component("discriminators", recipe.discriminator, context)
