"""LASER's conformance checks on this plugin's components, the same rules LASER applies when
it builds a recipe (wrong types, shapes and dtypes are errors there too), plus gradients and
round trips."""

import torch
from __module__ import plugin

from laser_core import BuildContext
from laser_core.testing import check_component, check_plugin


def test_every_component_passes_laser_conformance():
    """Every component the plugin registers, whatever its kind; add a component's recipe keys
    here when its defaults are not enough (a dataset's path, say)."""
    check_plugin(plugin, {"__name__": {"levels": 4}}, BuildContext(latent_dim=8))


def test___module___is_installed_and_rounds_to_the_nearest_level():
    bottleneck = check_component("bottlenecks", "__name__", {"levels": 3})  # as `laser` finds it
    z = torch.atanh(torch.tensor([-0.9, -0.2, 0.3, 0.8])).view(1, 4, 1, 1)
    assert bottleneck.decode(bottleneck.encode(z)).flatten().tolist() == [-1.0, 0.0, 0.0, 1.0]
