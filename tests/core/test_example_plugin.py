"""examples/laser-example-plugin stays a working template: its module registers through the
same hook machinery as any plugin, and the package installs with pip, appears in `laser
plugins`, passes its own tests there and uninstalls cleanly."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
import torch

from laser_core import BottleneckOutput, Codes
from laser_core.plugin.registry import Provider, Registry
from laser_core.testing import check_component
from tests.helpers import REPO, TINY_RECIPE, run_laser

PACKAGE = REPO / "examples" / "laser-example-plugin"


def example_registry() -> Registry:
    """A registry holding only the example plugin, loaded from its source file."""
    path = PACKAGE / "src" / "laser_example" / "plugin.py"
    spec = importlib.util.spec_from_file_location("laser_example_plugin_source", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the config's annotations through it
    spec.loader.exec_module(module)
    registry = Registry()
    registry.add_plugin(module, Provider("laser_example", "laser-example-plugin", "0.1.0"))
    assert not registry.failures, registry.failures
    return registry


def test_the_example_metric_registers_conforms_and_measures_absolute_error():
    metric = check_component("metrics", "mae", {"scale": "8bit"}, registry=example_registry())
    images = torch.zeros(2, 3, 4, 4)
    reconstructions = torch.stack([torch.full((3, 4, 4), -1.0), torch.full((3, 4, 4), 0.2)])
    output = BottleneckOutput(torch.zeros(1), torch.zeros(()), Codes(None, torch.zeros(1)))
    values = metric.per_example(images, reconstructions, output)
    torch.testing.assert_close(values, torch.tensor([0.5 * 255, 0.1 * 255]))


@pytest.mark.slow
def test_the_example_package_installs_lists_validates_passes_its_tests_and_uninstalls(
    write_recipe,
):
    pip = [sys.executable, "-m", "pip", "--quiet"]
    install = [*pip, "install", "--no-deps", "--no-build-isolation", str(PACKAGE)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    try:
        metrics = run_laser("plugins").stdout.split("metrics:")[1]
        assert "mae " in metrics and "laser-example-plugin 0.1.0" in metrics
        recipe = write_recipe(TINY_RECIPE.replace("[mse, psnr]", "[psnr, {name: mae}]"))
        assert run_laser("validate", str(recipe)).returncode == 0
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
        tests = subprocess.run(command, capture_output=True, text=True, cwd=PACKAGE, timeout=300)
        assert tests.returncode == 0, tests.stdout[-2000:]
        assert "3 passed" in tests.stdout
    finally:
        subprocess.run([*pip, "uninstall", "-y", "laser-example-plugin"], check=True, timeout=300)
    assert "mae " not in run_laser("plugins").stdout
