"""LASER: discrete and sparse latent autoencoders, assembled from plugins by YAML recipes."""

from laser_core.build import build_component, list_components
from laser_core.components import (
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
from laser_core.hookspecs import hookimpl
from laser_core.recipe import load_recipe

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
