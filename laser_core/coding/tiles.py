"""Images cut into tiles of the side a model was trained on, and put back together.

A model trained on 32-pixel patches has only ever normalised (GroupNorm) over 32-pixel
patches; run over a whole photograph it normalises over the whole of it and decodes several dB
worse. The codec therefore codes every image as tiles of the training side, exactly the input
the model knows, padding the bottom and right edges by repeating edge pixels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def layout(size: tuple[int, int], tile: int) -> tuple[int, int]:
    """Rows and columns of tiles that cover an image of ``size`` (height, width)."""
    return -(-size[0] // tile), -(-size[1] // tile)


def to_tiles(image: torch.Tensor, tile: int) -> torch.Tensor:
    """Tiles (rows * cols, C, tile, tile), row by row, of an image (C, H, W), its bottom and
    right edges padded by repetition to whole tiles."""
    channels, height, width = image.shape
    rows, cols = layout((height, width), tile)
    padding = (0, cols * tile - width, 0, rows * tile - height)
    padded = F.pad(image[None], padding, mode="replicate")[0] if any(padding) else image
    grid = padded.reshape(channels, rows, tile, cols, tile)
    return grid.permute(1, 3, 0, 2, 4).reshape(rows * cols, channels, tile, tile)


def from_tiles(tiles: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The image (C, H, W) of ``size`` (H, W) that ``to_tiles`` cut into ``tiles``."""
    channels, tile = tiles.shape[1:3]
    rows, cols = layout(size, tile)
    grid = tiles.reshape(rows, cols, channels, tile, tile).permute(2, 0, 3, 1, 4)
    return grid.reshape(channels, rows * tile, cols * tile)[:, : size[0], : size[1]]
