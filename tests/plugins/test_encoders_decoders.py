"""The built-in encoders and decoders keep the contract a recipe relies on, and the identity
pair hands the bottleneck raw pixel patches and gets the same pixels back."""

from __future__ import annotations

import pytest
import torch

from laser_core.errors import LaserError
from laser_core.plugin.contracts import BuildContext
from laser_core.testing import check_component

CONV = {"channels": [8, 16], "downsamplings": 2, "latent_dim": 6}


@pytest.mark.parametrize(
    ("name", "params"), [("conv", CONV), ("identity", {}), ("identity", {"patch_size": 4})]
)
def test_encoders_conform(name, params):
    check_component("encoders", name, params, BuildContext(image_channels=3, image_size=16))


@pytest.mark.parametrize(
    ("name", "params", "context"),
    [
        ("conv", {"channels": [16, 8]}, BuildContext(3, 16, latent_dim=6, downsampling=4)),
        ("conv", {"channels": [8], "upsamplings": 0}, BuildContext(1, 8, latent_dim=3)),
        ("identity", {}, BuildContext(3, 16, latent_dim=48, downsampling=4)),
    ],
)
def test_decoders_conform(name, params, context):
    check_component("decoders", name, params, context)


def test_identity_encoder_and_decoder_give_back_the_same_pixels():
    context = BuildContext(image_channels=3, image_size=16, latent_dim=12, downsampling=2)
    encoder = check_component("encoders", "identity", {"patch_size": 2}, context)
    decoder = check_component("decoders", "identity", {}, context)
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    patches = encoder(images)
    assert patches.shape == (2, 12, 8, 8)
    # each latent vector is one 2 x 2 patch of one channel's pixels, in order
    torch.testing.assert_close(patches[0, :4, 0, 0], images[0, 0, :2, :2].flatten())
    assert torch.equal(decoder(patches), images)


def test_identity_decoder_refuses_latents_that_are_not_pixel_patches():
    with pytest.raises(LaserError, match="encoder 'identity' or decoder 'conv'"):
        check_component("decoders", "identity", {}, BuildContext(3, 16, latent_dim=5))


def test_classify_task_config_conforms():
    check_component("tasks", "classify", {"classifier": "mlp", "data": {"name": "digits"}})
