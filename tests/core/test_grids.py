"""The pictures a run leaves: a validation's reconstruction grid holds the originals above
their reconstructions, each in a one-pixel black frame, as the pixels the model saw."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from laser_core.data.images import to_pixels
from laser_core.training.evaluate import save_reconstruction_grid


def test_a_reconstruction_grid_shows_originals_above_reconstructions(tmp_path):
    images = torch.linspace(-1, 1, 3 * 4 * 5).reshape(3, 1, 4, 5)
    reconstructions = images.flip(0)
    path = tmp_path / "grid.png"
    save_reconstruction_grid(images, reconstructions, path, count=2)
    grid = np.asarray(Image.open(path))
    assert grid.shape == (2 * 5 + 1, 2 * 6 + 1)  # two rows of two 4x5 images, framed
    assert (grid[[0, 5, 10]] == 0).all() and (grid[:, [0, 6, 12]] == 0).all()
    for row, batch in enumerate((images, reconstructions)):
        for column in range(2):
            cell = grid[1 + row * 5 : 5 + row * 5, 1 + column * 6 : 6 + column * 6]
            assert (cell == to_pixels(batch[column])[..., 0]).all()
