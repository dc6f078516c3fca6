"""The built-in discriminator conforms and says when images are too small for it."""

from __future__ import annotations

import pytest
import torch

from laser_core.errors import LaserError
from laser_core.plugin.contracts import BuildContext
from laser_core.testing import check_component


@pytest.mark.parametrize("norm", ["batch", "group", "instance", "none"])
def test_patchgan_conforms_and_gives_one_logit_per_patch(norm: str):
    context = BuildContext(image_channels=3, image_size=32)
    patchgan = check_component(
        "discriminators", "patchgan", {"layers": 2, "channels": 8, "norm": norm}, context
    )
    # two stride-2 layers: 32 -> 8, then the two stride-1 4x4 convolutions take 1 each
    assert patchgan(torch.zeros(5, 3, 32, 32)).shape == (5, 1, 6, 6)


def test_patchgan_widths_double_per_layer_up_to_eight_times():
    patchgan = check_component(
        "discriminators", "patchgan", {"layers": 4, "channels": 4}, BuildContext(image_size=48)
    )
    convs = [m for m in patchgan.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 16, 32, 32, 1]


def test_patchgan_too_deep_for_the_images_says_how_deep_it_may_be():
    with pytest.raises(
        LaserError, match=r"at least 24 pixels, got 16; set discriminator\.layers: 2"
    ):
        check_component("discriminators", "patchgan", {}, BuildContext(image_size=16))
