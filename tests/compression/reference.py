"""What a codec must reproduce, computed straight from the model and never through ``Codec``:
tiles cut and joined here with ``F.pad`` and ``unfold``, codes from the bottleneck's own
``encode``, values put on the quantizer's levels by the formula written out, and images
through the bottleneck's ``decode`` and the decoder. The round-trip tests compare what a
``.lsr`` file decodes to against these."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from laser_core.coding import container
from laser_core.coding.codec import Codec
from laser_core.plugin.contracts import Codes


def tiles_of(image: torch.Tensor, tile: int) -> tuple[torch.Tensor, int, int]:
    """Tiles (rows * cols, C, tile, tile) of an image padded by edge repetition, rows, cols."""
    rows, cols = -(-image.shape[1] // tile), -(-image.shape[2] // tile)
    padding = (0, cols * tile - image.shape[2], 0, rows * tile - image.shape[1])
    padded = F.pad(image[None], padding, mode="replicate")[0]
    tiles = padded.unfold(1, tile, tile).unfold(2, tile, tile)  # (C, rows, cols, tile, tile)
    return tiles.permute(1, 2, 0, 3, 4).reshape(-1, image.shape[0], tile, tile), rows, cols


def image_of(tiles: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """The padded image (C, rows * tile, cols * tile) that ``tiles`` cover."""
    channels, tile = tiles.shape[1], tiles.shape[2]
    grid = tiles.reshape(rows, cols, channels, tile, tile).permute(2, 0, 3, 1, 4)
    return grid.reshape(channels, rows * tile, cols * tile)


@torch.no_grad()
def model_codes(codec: Codec, image: torch.Tensor) -> Codes:
    """The codes (tiles, height, width, depth) a file must hold for ``image`` (C, H, W): the
    bottleneck's codes of the encoder's latents of each tile, values rounded to the nearest
    multiple of their slot's step within 2**(bits-1) levels either side of 0, and, for
    sparse codes, index 0 wherever a value rounded to 0 (that atom adds nothing)."""
    model = codec.model
    codes = model.bottleneck.encode(model.encoder(tiles_of(image, codec.tile)[0]))
    if codes.values is None:
        return codes
    quantizer = codec.priors.quantizer
    half = 2 ** (quantizer.bits - 1)
    levels = torch.round(codes.values / quantizer.steps).clamp(-half, half - 1)
    indices = None if codes.indices is None else torch.where(levels == 0, 0, codes.indices)
    return Codes(indices, levels * quantizer.steps)


@torch.no_grad()
def model_reconstruction(codec: Codec, image: torch.Tensor) -> torch.Tensor:
    """The decoder's image (C, H, W) in [-1, 1] of :func:`model_codes`, tiles joined and the
    padding cropped away."""
    model = codec.model
    rows, cols = tiles_of(image, codec.tile)[1:]
    # contiguous, as codes read from a file are: the decoder's floats depend on the layout
    codes = model_codes(codec, image).map(lambda t: t.contiguous())
    tiles = model.decoder(model.bottleneck.decode(codes))
    return image_of(tiles, rows, cols)[:, : image.shape[1], : image.shape[2]].clamp(-1, 1)


def file_codes(codec: Codec, data: bytes) -> list[Codes]:
    """The codes each image of a ``.lsr`` file's bytes holds, as the range decoder reads them
    from the file, shaped (positions, depth); values dequantized."""
    found = []
    for image in container.unpack(data, "test.lsr").images:
        rows, cols = -(-image.size[0] // codec.tile), -(-image.size[1] // codec.tile)
        positions = rows * cols * image.grid[0] * image.grid[1]
        symbols = codec.coder.decode(image.payload, positions)
        values = None
        if symbols.values is not None:
            values = (symbols.values - symbols.zero_value).float() * codec.priors.quantizer.steps
        found.append(Codes(symbols.indices, values))
    return found
