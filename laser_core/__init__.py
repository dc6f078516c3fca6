"""LASER: discrete and sparse latent autoencoders, assembled from plugins by YAML recipes.

This module is the public API, for plugin authors and library users alike: a built-in plugin
imports nothing else from LASER but this, :mod:`laser_core.ops` (numerical kernels) and
:mod:`laser_core.testing` (the conformance kit). Everything else is internal and may move.

Every name below is imported when first used (a module ``__getattr__``, PEP 562), so ``import
laser_core`` takes milliseconds and ``laser --help`` imports no torch. The imports under
``TYPE_CHECKING`` are what type checkers and readers see, and where ``__getattr__`` looks a name
up (parsed once, on first use).
"""

from __future__ import annotations

import ast
import importlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from laser_core.assembly.build import Autoencoder, build_component, list_components
    from laser_core.assembly.perceptual import LPIPS, build_lpips
    from laser_core.assembly.weights import require as require_weights
    from laser_core.campaigns.report import compare as compare_runs
    from laser_core.campaigns.runner import run_sweep
    from laser_core.coding.files import (
        Compressed,
        compare_rd,
        compress_files,
        count_priors,
        decompress_file,
        finetune_quantized,
    )
    from laser_core.data.images import image_pixels
    from laser_core.data.photos import SAMPLE_PHOTOS, PhotoName, sample_photo
    from laser_core.downstream.classifier import (
        ConvClassifier,
        classifier_accuracy,
        fit_classifier,
    )
    from laser_core.downstream.latents import Latents, encode_images
    from laser_core.downstream.workflow import ExportReport, analyze_export, export_run, rerun_task
    from laser_core.errors import (
        ComponentError,
        LaserError,
        PluginError,
        Problem,
        RecipeError,
        did_you_mean,
    )
    from laser_core.importers.workflow import import_diffusers, import_taming
    from laser_core.nn.distributed import all_reduce_sum, broadcast_from_main, world_size
    from laser_core.nn.gradients import straight_through
    from laser_core.nn.layers import ResBlock, group_norm, is_power_of_two, stage_channels
    from laser_core.nn.precision import full_precision
    from laser_core.nn.shapes import to_latent, to_vectors
    from laser_core.nn.usage import code_counts, perplexity, usage_stats
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
        Decoder,
        Discriminator,
        DiscriminatorConfig,
        Encoder,
        Metric,
        Task,
    )
    from laser_core.plugin.hookspecs import Register, hookimpl
    from laser_core.plugin.mode_options import ModeConfig, ModeOptions
    from laser_core.plugin.priors import CodingStep, Prior, SymbolSpec
    from laser_core.plugin.types import (
        AdamBeta,
        AtMost,
        CodebookSize,
        FiniteFloat,
        NonNegativeFloat,
        NonNegativeInt,
        PositiveFloat,
        PositiveInt,
        Seed,
        UnitInterval,
    )
    from laser_core.recipes.model import BackboneWeights, LpipsNet, Recipe, load_recipe
    from laser_core.runs.load import TrainedRun, dataset_overrides, load_run
    from laser_core.runs.workflow import (
        EvalResult,
        RunResult,
        evaluate_run,
        resume_run,
        run_recipe,
    )

__all__ = [
    "LPIPS",
    "SAMPLE_PHOTOS",
    "AdamBeta",
    "AtMost",
    "Autoencoder",
    "BackboneWeights",
    "Bottleneck",
    "BottleneckOutput",
    "BuildContext",
    "ClipLayout",
    "CodeSpec",
    "CodebookSize",
    "Codes",
    "CodingStep",
    "ComponentConfig",
    "ComponentError",
    "Compressed",
    "ConvClassifier",
    "DataSplits",
    "DatasetConfig",
    "Decoder",
    "Discriminator",
    "DiscriminatorConfig",
    "Encoder",
    "EvalResult",
    "ExportReport",
    "FiniteFloat",
    "LaserError",
    "Latents",
    "LpipsNet",
    "Metric",
    "ModeConfig",
    "ModeOptions",
    "NonNegativeFloat",
    "NonNegativeInt",
    "PhotoName",
    "PluginError",
    "PositiveFloat",
    "PositiveInt",
    "Prior",
    "Problem",
    "Recipe",
    "RecipeError",
    "Register",
    "ResBlock",
    "RunResult",
    "Seed",
    "SymbolSpec",
    "Task",
    "TrainedRun",
    "UnitInterval",
    "all_reduce_sum",
    "analyze_export",
    "broadcast_from_main",
    "build_component",
    "build_lpips",
    "classifier_accuracy",
    "code_counts",
    "compare_rd",
    "compare_runs",
    "compress_files",
    "count_priors",
    "dataset_overrides",
    "decompress_file",
    "did_you_mean",
    "encode_images",
    "evaluate_run",
    "export_run",
    "finetune_quantized",
    "fit_classifier",
    "full_precision",
    "group_norm",
    "hookimpl",
    "image_pixels",
    "import_diffusers",
    "import_taming",
    "is_power_of_two",
    "list_components",
    "load_recipe",
    "load_run",
    "perplexity",
    "require_weights",
    "rerun_task",
    "resume_run",
    "run_recipe",
    "run_sweep",
    "sample_photo",
    "stage_channels",
    "straight_through",
    "to_latent",
    "to_vectors",
    "usage_stats",
    "world_size",
]


@cache
def _sources() -> dict[str, tuple[str, str]]:
    """Each public name -> (its module, its name there), read from the imports above."""
    tree = ast.parse(Path(__file__).read_text())
    block = next(node for node in tree.body if isinstance(node, ast.If))
    return {
        alias.asname or alias.name: (node.module, alias.name)
        for node in block.body
        if isinstance(node, ast.ImportFrom) and node.module
        for alias in node.names
    }


def __getattr__(name: str) -> Any:
    source = _sources().get(name)
    if source is None:
        raise AttributeError(f"module 'laser_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(source[0]), source[1])
    globals()[name] = value  # later uses find it without calling this
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
