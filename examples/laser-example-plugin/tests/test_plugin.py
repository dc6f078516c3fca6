"""The example plugin's own tests: LASER's conformance kit, then what the metric computes."""

import pytest
import torch

from laser_core import BottleneckOutput, Codes
from laser_core.testing import check_component


def output() -> BottleneckOutput:
    return BottleneckOutput(torch.zeros(2, 1), torch.zeros(()), Codes(None, torch.zeros(2, 1)))


def test_mae_passes_laser_conformance():
    check_component("metrics", "mae", {"scale": "8bit"})


def test_mae_is_the_mean_absolute_pixel_error_per_example():
    metric = check_component("metrics", "mae")
    images = torch.zeros(2, 3, 4, 4)  # mid-grey, 0.5 on [0, 1]
    reconstructions = torch.stack([torch.full((3, 4, 4), 0.5), torch.full((3, 4, 4), 3.0)])
    values = metric.per_example(images, reconstructions, output())
    assert values.tolist() == [0.25, 0.5]  # 0.5 -> 0.75, and 3.0 clamped to 1 -> 1.0
    assert metric.summarize(values) == {"mae": 0.375}


def test_8bit_scale_reports_levels_under_its_own_key():
    metric = check_component("metrics", "mae", {"scale": "8bit"})
    values = metric.per_example(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5), output())
    assert metric.summarize(values) == {"mae_8bit": pytest.approx(255 * 0.25)}
