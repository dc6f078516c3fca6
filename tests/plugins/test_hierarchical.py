"""The hierarchical (VQ-VAE-2 style) encoder and decoder: they conform, carry both levels
through one latent losslessly, and refuse image sizes the top level cannot tile."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from laser_core import build_component
from laser_core.errors import LaserError
from laser_core.plugin.contracts import BuildContext
from laser_core.testing import check_component

ENCODER = {"channels": [8, 16], "downsamplings": 1, "bottom_dim": 4, "top_dim": 8}
CONTEXT = BuildContext(image_channels=3, image_size=16)


def test_hierarchical_encoder_conforms():
    encoder = check_component("encoders", "hierarchical", ENCODER, CONTEXT)
    assert encoder.latent_dim == 4 + 8 // 4 and encoder.downsampling == 2
    assert encoder.input_multiple == 4


def test_hierarchical_decoder_conforms():
    context = BuildContext(image_channels=3, image_size=16, latent_dim=6, downsampling=2)
    check_component("decoders", "hierarchical", {"channels": [16, 8]}, context)


def test_latents_hold_the_bottom_level_and_the_whole_top_level():
    torch.manual_seed(0)
    encoder = build_component("encoders", {"name": "hierarchical", **ENCODER}, CONTEXT).eval()
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        latents = encoder(images)
        features = encoder.features(images)
        bottom, top = encoder.bottom(features), encoder.top(features)
    assert top.shape == (2, 8, 4, 4)  # one level coarser than the bottom's 8 x 8
    assert torch.equal(latents[:, :4], bottom)
    assert torch.equal(F.pixel_unshuffle(latents[:, 4:], 2), top)


def test_image_sides_the_top_level_cannot_tile_are_refused():
    encoder = build_component("encoders", {"name": "hierarchical", **ENCODER}, CONTEXT)
    with pytest.raises(LaserError, match="multiples of 4, got 18x16"):
        encoder(torch.zeros(1, 3, 18, 16))
