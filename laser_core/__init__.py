"""LASER: discrete and sparse latent autoencoders, assembled from plugins by YAML recipes."""

from laser_core.plugin.contracts import (
    Bottleneck,
    BottleneckOutput,
    BuildContext,
    ClipLayout,
    Codes,
    CodeSpec,
    ComponentConfig,
    DatasetConfig,
    DataSplits,
    DiscriminatorConfig,
    Task,
)
from laser_core.plugin.hookspecs import hookimpl
from laser_core.recipes.model import load_recipe
from laser_core.training.build import build_component, list_components

__all__ = [
    "Bottleneck",
    "BottleneckOutput",
    "BuildContext",
    "ClipLayout",
    "CodeSpec",
    "Codes",
    "ComponentConfig",
    "DataSplits",
    "DatasetConfig",
    "DiscriminatorConfig",
    "Task",
    "build_component",
    "hookimpl",
    "list_components",
    "load_recipe",
]
