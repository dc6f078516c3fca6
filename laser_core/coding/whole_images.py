"""A run whose bottleneck has its own entropy model as an image codec of whole images.

An image (C, H, W) in [-1, 1] is padded (repeating its edges) to a multiple of the model's
stride, encoded in one piece, its stages range coded under the run's stored coding tables
(coding_tables.safetensors, written when training ended) and the padding cropped away after
decoding. Files are ``.lsr`` containers of version 1 whose "priors" identity is that of the
tables and whose grid is the whole image's latent grid. Compression measures its
reconstruction with the very function decompression uses, so the two agree bit for bit.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load

from laser_core.assembly.build import build_losses
from laser_core.coding import container
from laser_core.coding.identity import digest, model_identity
from laser_core.coding.image_codec import ImageCodec, check_model
from laser_core.coding.rates import Rates
from laser_core.coding.refine import LatentRefiner
from laser_core.coding.table_coder import TableCoder
from laser_core.errors import LaserError
from laser_core.ops.frequencies import CodingTable
from laser_core.plugin.contracts import EntropyCodedBottleneck
from laser_core.rundir.layout import RunDir
from laser_core.runs.load import TrainedRun, load_run


@dataclass
class WholeEncoded:
    """One image's code: its stages (each (1, channels, height, width), clamped to the
    tables), its latent ``grid`` (height, width), the image ``size`` (height, width) and,
    when encoded here, the table rows that code each stage (table_coder.py)."""

    stages: list[torch.Tensor]
    grid: tuple[int, int]
    size: tuple[int, int]
    rows: list[torch.Tensor] | None = None


class WholeImageCodec(ImageCodec):
    """Compresses and decompresses whole images with one run's model and coding tables."""

    tile = 1
    """Any image size codes as it is: nothing to crop it to (rd.py reads this)."""
    held_by_model = "coding tables"

    def __init__(self, run: TrainedRun, tables: list[CodingTable], identity: bytes):
        self.run, self.identity = run, identity
        # Channels-last convolutions run 1.5x faster on CPUs (oneDNN's native layout).
        self.model = run.model.eval().to(memory_format=torch.channels_last)
        self.bottleneck: EntropyCodedBottleneck = self.model.bottleneck
        self.coder = TableCoder(self.bottleneck, tables)
        self.model_id = model_identity(run.run_dir)
        self.channels = run.context.image_channels
        self.downsampling = self.model.encoder.downsampling
        self.codebook_bytes = sum(
            t.numel() * 4 for table in tables for t in (table.frequencies, table.offsets)
        )
        self.refiner: LatentRefiner | None = None

    @classmethod
    def open(cls, run_dir: Path) -> WholeImageCodec:
        """The codec of a finished run, with the coding tables its training stored."""
        run = load_run(run_dir)
        if not isinstance(run.model.bottleneck, EntropyCodedBottleneck):
            raise LaserError(
                f"{run_dir} records that it codes whole images, but its bottleneck "
                f"'{run.recipe.bottleneck.name}' has no entropy model"
            )
        tables, identity = read_tables(run_dir)
        return cls(run, tables, identity)

    def refined(self, steps: int) -> WholeImageCodec:
        """This codec with an encoder that refines each image's latents for ``steps`` steps
        (refine.py); its files decode as any other."""
        recipe = self.run.recipe
        if not self.bottleneck.refinable:
            raise LaserError(
                f"{self.run.run_dir}: bottleneck '{recipe.bottleneck.name}' cannot refine its "
                "latents (it does not relax its codes); compress without --refine"
            )
        self.model.requires_grad_(False)  # refinement differentiates the latents only
        losses = build_losses(recipe, self.run.context)
        refined = copy.copy(self)
        refined.refiner = LatentRefiner(
            self.model.decoder, self.bottleneck, self.coder, losses, recipe.losses.rate, steps
        )
        return refined

    @property
    def setting(self) -> str:
        """What ``laser rd`` names this codec's setting."""
        return f"{self.run.recipe.bottleneck.name} rate={self.run.recipe.losses.rate:g}"

    def latent_grid(self, size: tuple[int, int]) -> tuple[int, int]:
        """The latent grid (height, width) of an image of ``size`` once padded."""
        return (-(-size[0] // self.downsampling), -(-size[1] // self.downsampling))

    @torch.no_grad()
    def encode(self, image: torch.Tensor) -> WholeEncoded:
        """The code of one image (C, H, W) in [-1, 1]."""
        if image.shape[0] != self.channels:
            raise LaserError(
                f"the model takes {self.channels}-channel images, got {image.shape[0]} channels"
            )
        height, width = image.shape[1:]
        padding = (0, -width % self.downsampling, 0, -height % self.downsampling)
        padded = F.pad(image[None], padding, mode="replicate") if any(padding) else image[None]
        latents = self.model.encoder(padded.contiguous(memory_format=torch.channels_last))
        grid = self.latent_grid((height, width))
        if self.refiner is not None:
            latents = self.refiner.refine(latents, image[None], grid)
        stages, rows = self.coder.clamp(self.bottleneck.stage_symbols(latents), grid)
        return WholeEncoded(stages, grid, (height, width), rows)

    @torch.no_grad()
    def reconstruct(self, encoded: WholeEncoded) -> torch.Tensor:
        """The decoded image (C, H, W) in [-1, 1] of a code."""
        latents = self.bottleneck.dequantize(encoded.stages)
        latents = latents.contiguous(memory_format=torch.channels_last)
        image = self.model.decoder(latents)[0, :, : encoded.size[0], : encoded.size[1]]
        return image.clamp(-1, 1)

    def pack(self, encoded: list[WholeEncoded]) -> tuple[bytes, float]:
        """The file's bytes and the cross-entropy of its codes in bits."""
        coded, bits = [], 0.0
        for image in encoded:
            payload, image_bits = self.coder.encode(image.stages, image.rows)
            coded.append(container.CodedImage(image.size, image.grid, payload))
            bits += image_bits
        found = container.Container(self.model_id, self.identity, self.channels, coded)
        return container.pack(found), bits

    def decompress(self, data: bytes, source: str) -> list[torch.Tensor]:
        """The images (C, H, W) in [-1, 1] of a ``.lsr`` file's bytes; ``source`` names it."""
        found = container.unpack(data, source)
        self._check_written_by_us(found, source)
        images = []
        for image in found.images:
            if image.grid != self.latent_grid(image.size):
                raise LaserError(f"{source} is corrupted (an image's grid does not fit its size)")
            stages = self.coder.decode(image.payload, image.grid)
            images.append(self.reconstruct(WholeEncoded(stages, image.grid, image.size)))
        return images

    def rates(self, encoded: list[WholeEncoded], file_bytes: int, cross_entropy: float) -> Rates:
        return Rates(
            pixels=sum(e.size[0] * e.size[1] for e in encoded),
            nominal_bits=sum(self.coder.nominal_bits(e.rows) for e in encoded),
            cross_entropy_bits=cross_entropy,
            actual_bits=8 * file_bytes,
        )

    def _check_written_by_us(self, found: container.Container, source: str) -> None:
        run_dir = self.run.run_dir
        check_model(found.model_id, self.model_id, run_dir, source)
        if found.stream is not None or found.priors_id != self.identity:
            raise LaserError(
                f"{source} was not coded under {RunDir(run_dir).coding_tables}; decompress it "
                "with the run directory that compressed it"
            )
        if found.channels != self.channels:
            raise LaserError(f"{source} holds {found.channels}-channel images, not {self.channels}")


def read_tables(run_dir: Path) -> tuple[list[CodingTable], bytes]:
    """The run's stored coding tables, stage by stage, and their identity."""
    path = RunDir(run_dir).coding_tables
    if not path.is_file():
        raise LaserError(
            f"{run_dir} has no {RunDir.CODING_TABLES}, which training writes when it ends; "
            f"finish the run with `laser run --resume {run_dir}`"
        )
    data = path.read_bytes()
    try:
        tensors = load(data)
    except SafetensorError as error:
        raise LaserError(f"cannot read {path} ({error})") from None
    tables = []
    while f"{len(tables)}.frequencies" in tensors:
        stage = len(tables)
        names = ("frequencies", "offsets", "sizes")
        tables.append(CodingTable(*(tensors[f"{stage}.{name}"].long() for name in names)))
    return tables, digest(data)
