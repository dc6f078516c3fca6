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
from laser_core.coding.image_codec import ImageCodec, check_model
from laser_core.coding.prior_coder import PriorCoder
from laser_core.coding.priors import Priors, build_priors, load_priors
from laser_core.coding.rates import Rates, codebook_bytes, nominal_bits
from laser_core.coding.symbols import Symbols, concatenate, to_codes, to_symbols
from laser_core.coding.tiles import from_tiles, layout, to_tiles
from laser_core.coding.tokens import from_tokens, symbol_spec, to_tokens
from laser_core.coding.trained_priors import (
    TrainedPrior,
    load_trained_prior,
    prior_dir,
    trained_prior_names,
)
from laser_core.errors import LaserError
from laser_core.plugin.priors import SymbolSpec
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


class Codec(ImageCodec):
    """Compresses and decompresses images with one run's model and priors; ``tile`` is the
    side of the images the run trained on. With a trained prior (``with_prior``), files hold
    one stream coded under it (container version 2) instead of per-image payloads coded under
    the counted priors (version 1)."""

    def __init__(self, run: TrainedRun, priors: Priors, trained: TrainedPrior | None = None):
        self.run, self.priors, self.trained = run, priors, trained
        self.model = run.model.eval()
        self.coder = EntropyCoder(priors)
        self.prior_coder = PriorCoder(trained) if trained is not None else None
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
        counted again elsewhere may differ from those the file was coded under); a file coded
        under a trained prior finds it among the run's trained priors by its identity."""
        written = container.unpack(data, source)
        model_id = model_identity(run_dir)
        check_model(written.model_id, model_id, run_dir, source)
        codec = cls(load_run(run_dir), load_priors(run_dir, model_id))
        if written.stream is None:
            return codec
        for name in trained_prior_names(run_dir):
            candidate = codec.with_prior(name)
            if candidate.trained.identity == written.priors_id:
                return candidate
        raise LaserError(
            f"{source} was coded under a trained prior that is not among {run_dir}'s "
            f"({', '.join(trained_prior_names(run_dir)) or 'none'}); decompress it with the run "
            "directory and prior that compressed it"
        )

    def with_prior(self, name: str | None) -> Codec:
        """This codec coding under the run's trained prior ``name`` (without a name, the only
        one there is), refused when it was trained for other codes."""
        run_dir = self.run.run_dir
        names = trained_prior_names(run_dir)
        if name is None:
            if len(names) != 1:
                raise LaserError(
                    f"{run_dir} has {len(names)} trained priors ({', '.join(names) or 'none'}); "
                    + ("pick one with --prior" if names else "train one with `laser prior`")
                )
            name = names[0]
        if not (prior_dir(run_dir, name)).is_dir():
            raise LaserError(
                f"{run_dir} has no trained prior '{name}' (trained: {', '.join(names) or 'none'}"
                f"); train one with `laser prior {run_dir} recipes/priors/transformer-cpu.yaml`"
            )
        trained = load_trained_prior(
            run_dir, name, self.priors.model_id, self.symbols, self.priors.identity
        )
        return Codec(self.run, self.priors, trained)

    @property
    def setting(self) -> str:
        """What ``laser rd`` names this codec's setting."""
        quantizer = self.priors.quantizer
        bits = f" bits={quantizer.bits}" if quantizer else ""
        return self.run.recipe.bottleneck.name + bits

    @cached_property
    def symbols(self) -> SymbolSpec:
        """The tokens a prior models for one tile of this run, probed with a blank tile."""
        encoded = self.encode(torch.zeros(self.channels, self.tile, self.tile))
        return symbol_spec(
            self.model.bottleneck.code_spec(),
            self.priors.quantizer,
            encoded.grid,
            encoded.symbols.depth,
            self.run.data.num_classes,
        )

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

    def pack(self, encoded: list[Encoded]) -> tuple[bytes, float]:
        """The file's bytes and the cross-entropy of its codes in bits."""
        if self.prior_coder is None:
            coded = [
                container.CodedImage(e.size, e.grid, self.coder.encode(e.symbols)) for e in encoded
            ]
            found = container.Container(
                self.priors.model_id, self.priors.identity, self.channels, coded
            )
            bits = sum(self.coder.cross_entropy_bits(e.symbols) for e in encoded)
            return container.pack(found), bits
        tokens = torch.cat([to_tokens(e.symbols, self.symbols) for e in encoded])
        stream, bits = self.prior_coder.encode(tokens)
        coded = [container.CodedImage(e.size, e.grid, b"") for e in encoded]
        found = container.Container(
            self.priors.model_id, self.trained.identity, self.channels, coded, stream
        )
        return container.pack(found), bits

    def decompress(self, data: bytes, source: str) -> list[torch.Tensor]:
        """The images (C, H, W) in [-1, 1] of a ``.lsr`` file's bytes; ``source`` names it."""
        found = container.unpack(data, source)
        self._check_written_by_us(found, source)
        tiles = [math.prod(layout(image.size, self.tile)) for image in found.images]
        if found.stream is not None:
            tokens = self.prior_coder.decode(found.stream, sum(tiles)).split(tiles)
        images = []
        for number, image in enumerate(found.images):
            if found.stream is None:
                positions = tiles[number] * image.grid[0] * image.grid[1]
                symbols = self.coder.decode(image.payload, positions)
            else:
                symbols = from_tokens(tokens[number], self.symbols)
            images.append(self.reconstruct(Encoded(symbols, image.grid, image.size)))
        return images

    def _check_written_by_us(self, found: container.Container, source: str) -> None:
        run_dir = self.run.run_dir
        priors = RunDir(run_dir).priors_safetensors
        check_model(found.model_id, self.priors.model_id, run_dir, source)
        expected = self.priors.identity if self.trained is None else self.trained.identity
        if (found.stream is None) != (self.trained is None):
            under = "the counted priors" if found.stream is None else "a trained prior"
            raise LaserError(f"{source} was coded under {under}; this codec uses the other")
        if found.priors_id != expected:
            raise LaserError(
                f"{source} was coded under other priors than {priors} (were they "
                "rebuilt since?); decompress it with the priors that compressed it"
            )
        if found.channels != self.channels:
            raise LaserError(f"{source} holds {found.channels}-channel images, not {self.channels}")

    def rates(self, encoded: list[Encoded], file_bytes: int, cross_entropy: float) -> Rates:
        """Rates of images coded into one file of ``file_bytes`` bytes whose codes cost
        ``cross_entropy`` bits under the priors."""
        quantizer = self.priors.quantizer
        return Rates(
            pixels=sum(e.size[0] * e.size[1] for e in encoded),
            nominal_bits=sum(
                nominal_bits(e.symbols, self.alphabet_sizes, quantizer) for e in encoded
            ),
            cross_entropy_bits=cross_entropy,
            actual_bits=8 * file_bytes,
        )

    @cached_property
    def codebook_bytes(self) -> int:
        """Bytes of the codebook or dictionary that decoding reads, probed with a blank image
        of the training size."""
        encoded = self.encode(torch.zeros(self.channels, self.tile, self.tile))
        codes = to_codes(encoded.symbols, self.priors.quantizer, encoded.shape(self.tile))
        return codebook_bytes(self.model.bottleneck, codes)
