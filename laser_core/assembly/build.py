"""Recipe -> components: the only place that knows how encoder, bottleneck and decoder fit."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from laser_core.assembly.losses import ImageLosses, smallest_side
from laser_core.assembly.perceptual import build_lpips
from laser_core.assembly.probe import blame, owner, probe_images, probing
from laser_core.errors import ContractError, LaserError, Problem, RecipeError
from laser_core.plugin.blocks import singular
from laser_core.plugin.checks import (
    check_bottleneck_output,
    check_built,
    check_dataset_item,
    check_decoder_output,
    check_discriminator_output,
    check_encoder_output,
    check_metric_values,
    require,
)
from laser_core.plugin.contracts import (
    BottleneckOutput,
    BuildContext,
    DataSplits,
    EntropyCodedBottleneck,
)
from laser_core.plugin.registry import Component, Registry, default_registry
from laser_core.recipes.model import Block, Recipe
from laser_core.rundir.layout import ImageShape


def list_components(kind: str, registry: Registry | None = None) -> list[Component]:
    """Every component of ``kind`` the installed plugins offer."""
    return (registry or default_registry()).of_kind(kind)


def build_component(
    kind: str,
    config: dict[str, Any] | Block,
    context: BuildContext | None = None,
    registry: Registry | None = None,
) -> Any:
    """Build one component, e.g. ``build_component("bottlenecks", {"name": "vq"})``, and check
    that it is what its kind promises; any failure names the component and its plugin."""
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
    with blame(block):
        built = block.component.factory(block.config, context or BuildContext())
        check_built(block.component.kind, built)
    return built


class Autoencoder(nn.Module):
    """encoder -> bottleneck -> decoder; the unit that is trained, saved and exported."""

    def __init__(self, encoder: nn.Module, bottleneck: nn.Module, decoder: nn.Module):
        super().__init__()
        self.encoder, self.bottleneck, self.decoder = encoder, bottleneck, decoder
        self.frozen: tuple[str, ...] = ()

    def train(self, mode: bool = True) -> Autoencoder:
        """Frozen parts stay in eval mode: no dropout, and a bottleneck that learns outside
        autograd (EMA codebooks, dictionary updates) stops learning too."""
        super().train(mode)
        for part in self.frozen:
            getattr(self, part).eval()
        return self

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, BottleneckOutput]:
        output = self.bottleneck(self.encoder(images))
        return self.decoder(output.quantized), output


def build_data(recipe: Recipe) -> DataSplits:
    """The dataset, with the first example of each split checked against the contract."""
    if recipe.data is None:
        raise LaserError(
            f"{recipe.source} has no data block (its model was imported without one); give "
            "a dataset, e.g. `data={name: image-folder, path: DIR}`"
        )
    splits = build_component("datasets", recipe.data)
    with blame(recipe.data, " on its first examples"), probing():
        for name in ("train", "val"):
            split = getattr(splits, name)
            require(len(split) > 0, f"the {name} split is empty")
            check_dataset_item(splits, split[0], name)
    return splits


def build_model(recipe: Recipe, images: ImageShape) -> tuple[Autoencoder, BuildContext]:
    """Build the three parts for ``images`` with what each needs of the others, and check on
    a probe batch that they fit and keep their contracts."""
    model, context, _ = _assemble(recipe, images)
    return model, context


Probe = tuple[torch.Tensor, torch.Tensor, BottleneckOutput]
"""Probe images, their reconstructions and the bottleneck's output."""


def _assemble(recipe: Recipe, images: ImageShape) -> tuple[Autoencoder, BuildContext, Probe]:
    context = BuildContext(
        image_channels=images.image_channels,
        image_size=images.image_size,
        num_classes=_classes(images) if isinstance(images, DataSplits) else None,
        rate_weight=recipe.losses.rate,
    )
    encoder = build_component("encoders", recipe.encoder, context)
    _check_downsampling(recipe, encoder.downsampling, context.image_size)
    context = replace(context, latent_dim=encoder.latent_dim, downsampling=encoder.downsampling)
    bottleneck = build_component("bottlenecks", recipe.bottleneck, context)
    context = replace(context, latent_dim=bottleneck.output_dim, code_spec=bottleneck.code_spec())
    decoder = build_component("decoders", recipe.decoder, context)
    model = Autoencoder(encoder, bottleneck, decoder)
    probe = _probe(model, context, recipe)
    if recipe.losses.rate and probe[2].bits is None:
        coded = [
            f"'{c.name}'"
            for c in list_components("bottlenecks")
            if isinstance(c.factory, type) and issubclass(c.factory, EntropyCodedBottleneck)
        ]
        message = (
            f"losses.rate={recipe.losses.rate} weighs the codes' bits under the bottleneck's "
            f"entropy model, but bottleneck '{recipe.bottleneck.name}' has none; use one that "
            f"has (installed: {', '.join(coded)}), or set losses.rate to 0"
        )
        raise _problem(recipe, recipe.bottleneck, message)
    return model, context, probe


def _classes(splits: DataSplits) -> int | None:
    """How many classes the dataset's labels have: 0 when its examples carry no label, None
    when they do but the dataset does not say how many."""
    if splits.num_classes is not None:
        return splits.num_classes
    return None if "label" in splits.train[0] else 0


def _check_downsampling(recipe: Recipe, downsampling: int, image_size: int) -> None:
    if image_size % downsampling == 0:
        return
    message = (
        f"encoder '{recipe.encoder.name}' downsamples by {downsampling}, which does not divide "
        f"the dataset's image size {image_size} (data at {_data_at(recipe)}); "
        "lower its downsampling or change the image size"
    )
    raise _problem(recipe, recipe.encoder, message)


def _data_at(recipe: Recipe) -> str:
    return (recipe.data.where if recipe.data else "") or recipe.source


def _problem(recipe: Recipe, block: Block, message: str) -> RecipeError:
    """A problem of how blocks fit together, located at ``block`` in the recipe."""
    where = block.where or recipe.source
    return RecipeError([Problem(where, block.key or singular(block.component.kind), message)])


def _probe(model: Autoencoder, context: BuildContext, recipe: Recipe) -> Probe:
    """Two images through encoder, bottleneck and decoder, each output checked."""
    images = probe_images(context)
    with probing(model):
        with blame(recipe.encoder, " on a probe batch"):
            latents = model.encoder(images)
            check_encoder_output(model.encoder, images, latents)
        with blame(recipe.bottleneck, " on the encoder's latents"):
            output = model.bottleneck(latents)
            check_bottleneck_output(output, latents, context.code_spec, context.latent_dim)
        with blame(recipe.decoder, " on the bottleneck's output"):
            reconstruction = model.decoder(output.quantized)
    try:
        check_decoder_output(reconstruction, tuple(images.shape))
    except ContractError as error:
        message = (
            f"{owner(recipe.decoder)}: {error} (encoder '{recipe.encoder.name}' gives latents "
            f"{tuple(latents.shape)}); make the decoder's upsampling match the encoder's "
            f"downsampling ({context.downsampling})"
        )
        raise _problem(recipe, recipe.decoder, message) from None
    return images, reconstruction, output


def check_recipe(recipe: Recipe) -> None:
    """Build every component of ``recipe`` on the CPU and run the contract checks on a probe
    batch, so that what fails at build time fails at ``laser validate``, before training."""
    splits = build_data(recipe)
    _, context, (images, reconstructions, output) = _assemble(recipe, splits)
    build_discriminator(recipe, context)
    metrics = build_metrics(recipe, context)
    build_losses(recipe, context)
    build_task(recipe, context)
    with probing():
        for block in recipe.metrics:
            with blame(block, " on a probe batch"):
                check_metric_values(
                    metrics[block.name].per_example(images, reconstructions, output),
                    len(images),
                )


def build_task(recipe: Recipe, context: BuildContext | None = None) -> Any:
    """The recipe's task, None without one. Built with the training context, a task that
    cannot work on the run (classify without labels) fails before training."""
    if recipe.task is None:
        return None
    return build_component("tasks", recipe.task, context)


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
    discriminator = build_component("discriminators", recipe.discriminator, context)
    images = probe_images(context)
    with blame(recipe.discriminator, " on a probe batch"), probing(discriminator):
        check_discriminator_output(discriminator(images), len(images))
    return discriminator
