"""A trained run and its priors as an image codec: images <-> ``.lsr`` bytes.

An image (C, H, W) in [-1, 1] is cut into tiles of the run's training image side (tiles.py),
encoded, its code values quantized and range coded. Decoding reverses each step and crops the
padding away. Compression measures its reconstruction with the very function decompression
uses, so the two agree bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import torch

from laser_core.coding import container
from laser_core.coding.entropy import EntropyCoder
from laser_core.coding.identity import model_identity
from laser_core.coding.priors import Priors, build_priors, load_priors
from laser_core.coding.rates import Rates, codebook_bytes, nominal_bits
from laser_core.coding.symbols import Symbols, concatenate, to_codes, to_symbols
from laser_core.coding.tiles import from_tiles, layout, to_tiles
from laser_core.errors import LaserError
from laser_core.rundir.layout import RunDir
from laser_core.runs.load import TrainedRun, load_run


@dataclass
class Encoded:
    """One image's code: its symbols, tile after tile, each tile a latent ``grid`` (height,
    width), and the image ``size`` (height, width) before padding."""

    symbols: Symbols
    grid: tuple[int, int]
    size: tuple[int, int]

    def shape(self, tile: int) -> tuple[int, int, int, int]:
        """The shape (tiles, height, width, depth) of the code as the bottleneck decodes it."""
        rows, cols = layout(self.size, tile)
        return (rows * cols, *self.grid, self.symbols.depth)


CHUNK_PIXELS = 2**20
"""Tiles go through the model in chunks of about this many pixels, bounding its memory."""


class Codec:
    """Compresses and decompresses images with one run's model and priors; ``tile`` is the
    side of the images the run trained on."""

    def __init__(self, run: TrainedRun, priors: Priors):
        self.run, self.priors = run, priors
        self.model = run.model.eval()
        self.coder = EntropyCoder(priors)
        self.alphabet_sizes = self.model.bottleneck.code_spec().alphabet_sizes
        self.channels = run.context.image_channels
        self.tile = run.context.image_size
        self.chunk = max(1, CHUNK_PIXELS // self.tile**2)

    @classmethod
    def open(cls, run_dir: Path) -> Codec:
        """The codec of a finished run, to compress with; counts its priors if it has none."""
        model_id = model_identity(run_dir)
        run = load_run(run_dir)
        if RunDir(run_dir).priors_safetensors.exists():
            return cls(run, load_priors(run_dir, model_id))
        return cls(run, build_priors(run, model_id))

    @classmethod
    def open_for(cls, run_dir: Path, data: bytes, source: str) -> Codec:
        """The codec of a finished run, to decompress the ``.lsr`` bytes ``data`` with. A file
        of another model is refused first; missing priors are an error, never rebuilt (priors
        counted again elsewhere may differ from those the file was coded under)."""
        written = container.unpack(data, source)
        model_id = model_identity(run_dir)
        _check_model(written.model_id, model_id, run_dir, source)
        return cls(load_run(run_dir), load_priors(run_dir, model_id))

    @torch.no_grad()
    def encode(self, image: torch.Tensor) -> Encoded:
        """The code of one image (C, H, W) in [-1, 1]."""
        if image.shape[0] != self.channels:
            raise LaserError(
                f"the model takes {self.channels}-channel images, got {image.shape[0]} channels"
            )
        tiles = to_tiles(image, self.tile).split(self.chunk)
        codes = concatenate([self.model.bottleneck.encode(self.model.encoder(t)) for t in tiles])
        grid = (codes.indices if codes.indices is not None else codes.values).shape[1:3]
        symbols = to_symbols(codes, self.priors.quantizer)
        return Encoded(symbols, (grid[0], grid[1]), (image.shape[1], image.shape[2]))

    @torch.no_grad()
    def reconstruct(self, encoded: Encoded) -> torch.Tensor:
        """The decoded image (C, H, W) in [-1, 1] of a code."""
        shape = encoded.shape(self.tile)
        codes = to_codes(encoded.symbols, self.priors.quantizer, shape)
        tiles = [
            self.model.decoder(
                self.model.bottleneck.decode(codes.map(lambda t, s=start: t[s : s + self.chunk]))
            )
            for start in range(0, shape[0], self.chunk)
        ]
        return from_tiles(torch.cat(tiles), encoded.size).clamp(-1, 1)

    def compress(self, images: list[torch.Tensor]) -> tuple[bytes, Rates]:
        """A ``.lsr`` file holding ``images``, each (C, H, W) in [-1, 1], and its rates."""
        encoded = [self.encode(image) for image in images]
        data = self.pack(encoded)
        return data, self.rates(encoded, len(data))

    def pack(self, encoded: list[Encoded]) -> bytes:
        coded = [
            container.CodedImage(e.size, e.grid, self.coder.encode(e.symbols)) for e in encoded
        ]
        return container.pack(
            container.Container(self.priors.model_id, self.priors.identity, self.channels, coded)
        )

    def decompress(self, data: bytes, source: str) -> list[torch.Tensor]:
        """The images (C, H, W) in [-1, 1] of a ``.lsr`` file's bytes; ``source`` names it."""
        found = container.unpack(data, source)
        self._check_written_by_us(found, source)
        images = []
        for image in found.images:
            tiles = math.prod(layout(image.size, self.tile))
            symbols = self.coder.decode(image.payload, tiles * image.grid[0] * image.grid[1])
            images.append(self.reconstruct(Encoded(symbols, image.grid, image.size)))
        return images

    def _check_written_by_us(self, found: container.Container, source: str) -> None:
        run_dir = self.run.run_dir
        priors = RunDir(run_dir).priors_safetensors
        _check_model(found.model_id, self.priors.model_id, run_dir, source)
        if found.priors_id != self.priors.identity:
            raise LaserError(
                f"{source} was coded under other priors than {priors} (were they "
                "rebuilt since?); decompress it with the priors that compressed it"
            )
        if found.channels != self.channels:
            raise LaserError(f"{source} holds {found.channels}-channel images, not {self.channels}")

    def rates(self, encoded: list[Encoded], file_bytes: int) -> Rates:
        """Rates of images coded into one file of ``file_bytes`` bytes."""
        quantizer = self.priors.quantizer
        return Rates(
            pixels=sum(e.size[0] * e.size[1] for e in encoded),
            nominal_bits=sum(
                nominal_bits(e.symbols, self.alphabet_sizes, quantizer) for e in encoded
            ),
            cross_entropy_bits=sum(self.coder.cross_entropy_bits(e.symbols) for e in encoded),
            actual_bits=8 * file_bytes,
        )

    def measure(self, image: torch.Tensor) -> tuple[torch.Tensor, Rates]:
        """The reconstruction (C, H, W) of one image compressed alone, and its rates."""
        encoded = self.encode(image)
        return self.reconstruct(encoded), self.rates([encoded], len(self.pack([encoded])))

    @cached_property
    def codebook_bytes(self) -> int:
        """Bytes of the codebook or dictionary that decoding reads, probed with a blank image
        of the training size."""
        encoded = self.encode(torch.zeros(self.channels, self.tile, self.tile))
        codes = to_codes(encoded.symbols, self.priors.quantizer, encoded.shape(self.tile))
        return codebook_bytes(self.model.bottleneck, codes)


def _check_model(written: bytes, model_id: bytes, run_dir: Path, source: str) -> None:
    if written != model_id:
        raise LaserError(
            f"{source} was compressed by another model ({written.hex()[:12]}) than the one in "
            f"{run_dir} ({model_id.hex()[:12]}); decompress it with the run directory that "
            "compressed it"
        )
