"""LASER's conformance checks, run on this plugin's component through the installed plugins."""

import torch

from laser_core import BuildContext
from laser_core.testing import check_component


def test___module___passes_laser_conformance():
    check_component("bottlenecks", "__name__", {"levels": 4}, BuildContext(latent_dim=8))


def test___module___rounds_to_the_nearest_level():
    bottleneck = check_component("bottlenecks", "__name__", {"levels": 3})
    z = torch.atanh(torch.tensor([-0.9, -0.2, 0.3, 0.8])).view(1, 4, 1, 1)
    assert bottleneck.decode(bottleneck.encode(z)).flatten().tolist() == [-1.0, 0.0, 0.0, 1.0]
