"""The contracts every component honours, so any encoder, bottleneck and decoder combine.

Images travel as float tensors in [-1, 1] shaped (batch, channels, height, width); latents as
(batch, dim, height, width). A plugin's factory is called as ``factory(config, context)`` and
returns the component; ``config`` is an instance of the plugin's pydantic config model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from laser_core.nn.codes import BottleneckOutput, Codes, CodeSpec
from laser_core.ops.frequencies import CodingTable
from laser_core.plugin.blocks import KINDS  # noqa: F401  every kind, one per recipe block
from laser_core.plugin.types import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

if TYPE_CHECKING:
    from laser_core.plugin.priors import SymbolSpec


class ComponentConfig(BaseModel):
    """Base of every plugin config: unknown keys are errors, never silently ignored."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class DatasetConfig(ComponentConfig):
    """Keys every dataset accepts, on top of its own; the loader reads them, not the plugin."""

    batch_size: PositiveInt = 32
    num_workers: NonNegativeInt | None = Field(
        None,
        description="loader processes; 0 loads in the main one; default: 0 on a CPU, on a GPU "
        "the process's share of the CPU cores, at most 8",
    )
    pin_memory: bool | None = Field(
        None,
        description="page-locked batches, copied to a GPU without blocking; default: on where "
        "a GPU trains; never on a CPU",
    )
    persistent_workers: bool = Field(
        False, description="keep the loader processes between epochs; needs num_workers > 0"
    )

    @model_validator(mode="after")
    def _persistent_workers_need_workers(self) -> DatasetConfig:
        if self.persistent_workers and not self.num_workers:
            chosen = "0" if self.num_workers == 0 else "left to the device (none on a CPU)"
            raise ValueError(
                f"persistent_workers needs loader processes to keep, and num_workers is {chosen}; "
                "set num_workers above 0 or remove persistent_workers"
            )
        return self

    def loader_workers(self, device: torch.device, processes: int = 1) -> int:
        """``num_workers``, or by default what suits ``device``: none on a CPU, where the
        model's own threads use the cores; on a GPU this process's share of the cores (at most
        8), so that batches are ready before the GPU asks."""
        if self.num_workers is not None:
            return self.num_workers
        if device.type == "cpu":
            return 0
        return max(1, min(8, len(os.sched_getaffinity(0)) // processes))

    def pins_memory(self, device: torch.device) -> bool:
        """Whether batches are page-locked: by default where a GPU trains; never on a CPU,
        where there is nothing to copy to."""
        return device.type != "cpu" and self.pin_memory is not False


class DiscriminatorConfig(ComponentConfig):
    """Keys every discriminator accepts, on top of its own; the training loop reads them."""

    start_step: NonNegativeInt = Field(
        0, description="optimizer steps before the discriminator and its loss come in"
    )
    weight: NonNegativeFloat = Field(0.8, description="scales the adversarial loss")
    loss: Literal["hinge", "non-saturating"] = "hinge"
    adaptive_weight: bool = Field(
        True, description="VQGAN's balance of gradient norms at the decoder's last layer"
    )
    r1_weight: NonNegativeFloat = Field(0.0, description="gamma of the R1 penalty on real images")
    lr: PositiveFloat | None = Field(None, description="the discriminator's lr; null: train.lr")


CONFIG_BASES: dict[str, type[ComponentConfig]] = {
    "datasets": DatasetConfig,
    "discriminators": DiscriminatorConfig,
}
"""Kinds whose configs must extend a base, because the framework reads the base's keys."""


@dataclass
class BuildContext:
    """What a factory may need to know about the components built before it."""

    image_channels: int = 3
    image_size: int = 32
    latent_dim: int = 16
    downsampling: int = 1
    code_spec: CodeSpec | None = None
    num_classes: int | None = None
    """Classes of the dataset's labels; 0: its examples carry none; None: not known."""
    symbols: SymbolSpec | None = None
    """The tokens a prior models (priors only)."""
    rate_weight: float = 0.0
    """The recipe's ``losses.rate`` (lambda), for a bottleneck whose quantization itself
    weighs bits against distortion (entropy-constrained VQ)."""


class Bottleneck(nn.Module):
    """Turns a continuous latent (batch, dim, height, width) into a discrete or sparse code."""

    dim: int

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        raise NotImplementedError

    def encode(self, z: torch.Tensor) -> Codes:
        """Codes for z, shaped (batch, height, width, depth); deterministic."""
        raise NotImplementedError

    def decode(self, codes: Codes) -> torch.Tensor:
        """The latent (batch, output_dim, height, width) that ``codes`` stand for."""
        raise NotImplementedError

    def code_spec(self) -> CodeSpec:
        raise NotImplementedError

    @property
    def output_dim(self) -> int:
        """Channels of ``quantized`` and of ``decode``'s latents, which the decoder is built
        for: ``dim`` for most bottlenecks; a Gaussian posterior whose input holds means and
        log-variances side by side (AutoencoderKL) emits half of them."""
        return self.dim

    def after_optimizer_step(self) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """Called by the trainer after every optimizer step, on every process, for updates
        outside autograd (re-normalising atoms, reviving dead codes). Returns (parameter,
        rows) pairs whose optimizer state the trainer must reset; rows are long indices or a
        boolean mask over the parameter's rows (a mask needs no host sync to build)."""
        return []


class EntropyCodedBottleneck(Bottleneck):
    """A bottleneck with its own learnt entropy model, coding whole images in stages.

    Its ``forward`` reports ``bits`` (see :class:`BottleneckOutput`), so training can weigh
    rate. For ``laser compress`` its code is a list of stages, each an integer tensor (batch,
    channels, height, width) coded under one :class:`CodingTable` whose row for each symbol
    depends only on the stages before it (a factorized prior: one stage, a row per channel; a
    scale hyperprior: the side information, then the latents with a row per scale). The
    tables are derived once, when training ends, and stored in the run directory, so that
    decoding reads integers, never a float density.
    """

    refinable: bool = False
    """Whether :meth:`relaxed` is implemented, so that ``laser compress --refine`` can fit
    each image's latents to its own rate and distortion."""

    def relaxed(self, z: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
        """The latents the decoder takes and each image's bits (batch,), both differentiable
        in z, with the codes' rounding relaxed: ``temperature`` about 0.5 is soft, toward 0
        the codes themselves. Only a bottleneck that sets ``refinable`` implements it."""
        raise NotImplementedError

    def coding_tables(self) -> list[CodingTable]:
        """One table per stage, from the learnt densities."""
        raise NotImplementedError

    def stage_symbols(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Each stage's integer symbols, long (batch, channels, height, width), of latents z."""
        raise NotImplementedError

    def stage_shapes(self, grid: tuple[int, int]) -> list[tuple[int, int, int]]:
        """(channels, height, width) of each stage's symbols for one latent ``grid``."""
        raise NotImplementedError

    def stage_rows(
        self, stage: int, decoded: list[torch.Tensor], grid: tuple[int, int]
    ) -> torch.Tensor:
        """The table row, long (channels, height, width), of every symbol of one image's
        ``stage``, from the stages before it only (``decoded``, each (1, channels, height,
        width)); ``grid`` is the image's latent grid."""
        raise NotImplementedError

    def dequantize(self, decoded: list[torch.Tensor]) -> torch.Tensor:
        """The latent (batch, output_dim, height, width) the decoder takes, from every stage."""
        raise NotImplementedError


@runtime_checkable
class Encoder(Protocol):
    """nn.Module mapping images (B, C, H, W) to latents (B, latent_dim, H/downsampling, ...)."""

    latent_dim: int
    downsampling: int

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Decoder(Protocol):
    """nn.Module mapping latents (B, latent_dim, h, w) back to images (B, C, H, W).

    The adaptive adversarial weight reads gradients at its last registered weight, so a
    decoder registers its output layer last.
    """

    def __call__(self, latents: torch.Tensor) -> torch.Tensor: ...


class Discriminator(nn.Module):
    """Scores images (B, C, H, W) as real or fake: logits (B, 1, h, w) or (B, 1); its config
    extends :class:`DiscriminatorConfig`."""


@dataclass(frozen=True)
class ClipLayout:
    """How a video dataset lays its clips out as images, so that training sees frames while
    export can regroup them: items run clip by clip, then frame by frame, then over the
    patch grid row by row, so clip c is items [c * items_per_clip, (c + 1) * items_per_clip).
    """

    frames: int
    grid: tuple[int, int] = (1, 1)
    """(rows, columns) of patches each frame is cut into; (1, 1) keeps frames whole."""

    @property
    def items_per_clip(self) -> int:
        return self.frames * self.grid[0] * self.grid[1]


@dataclass
class DataSplits:
    """A dataset plugin's product: torch datasets yielding {"image": (C, H, W) in [-1, 1]}
    and, where known, {"label": int}; ``clips`` is set by video datasets."""

    train: torch.utils.data.Dataset
    val: torch.utils.data.Dataset
    image_channels: int
    image_size: int
    num_classes: int | None = None
    clips: ClipLayout | None = None


class Metric(Protocol):
    """Per-example values, gathered across processes, then summarised.

    ``per_example`` returns (batch, ...) tensors so that ``gather_for_metrics`` can drop the
    samples a distributed sampler duplicated; ``summarize`` turns all of them into numbers.
    """

    def per_example(
        self, images: torch.Tensor, reconstructions: torch.Tensor, output: BottleneckOutput
    ) -> torch.Tensor: ...

    def summarize(self, values: torch.Tensor) -> dict[str, float]: ...


class Task(Protocol):
    """A downstream job on a finished run directory (recipe.yaml, model.safetensors), run by
    ``laser run`` after training; its numbers land in metrics.json as ``task/<key>``.

    Keys are ``row/column`` (e.g. ``continuous/accuracy``) so that they print as a table.
    """

    def run(self, run_dir: Path) -> dict[str, float]: ...
