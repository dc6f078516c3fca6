"""Installing a plugin never changes what a recipe or a run directory means: a plugin that
registers a built-in's name is reached only by its qualified name, and a run reopens with the
plugin that trained it, whatever is installed later."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from laser_core import hookimpl, load_run
from laser_core.cli.main import main
from laser_core.plugin import registry as registry_module
from laser_core.plugin.registry import Provider, Registry
from tests.core.test_contracts import SignBottleneck, SignConfig, build_sign
from tests.helpers import TINY_RECIPE

pytestmark = pytest.mark.slow  # trains a tiny model in-process

SHADOW = Provider("shadow", "laser-shadow", "1.0")
RECIPE = TINY_RECIPE.replace("steps: 6", "steps: 2").replace("eval_batches: 1", "eval_batches: 2")


class ShadowPlugin:
    """A working bottleneck registered under the built-in's name 'vq'."""

    @hookimpl
    def laser_register_bottlenecks(self, register):
        register("vq", build_sign, config=SignConfig, summary="one bit per position")


def use(monkeypatch, *plugins: tuple[object, Provider]) -> Registry:
    """Make `laser` see the installed plugins plus ``plugins``."""
    registry = Registry()
    registry.load_entry_points(disabled=set())
    for plugin, provider in plugins:
        registry.add_plugin(plugin, provider)
    monkeypatch.setattr(registry_module, "_default", registry)
    return registry


def laser(capsys, *argv: str) -> str:
    code = main(list(argv))
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_an_earlier_run_keeps_its_built_in_when_a_plugin_shadows_it(
    tmp_path, write_recipe, capsys, monkeypatch
):
    recipe, run_dir = str(write_recipe(RECIPE)), tmp_path / "run"
    laser(capsys, "run", recipe, "--run-dir", str(run_dir))
    use(monkeypatch, (ShadowPlugin(), SHADOW))
    assert "  [shadowed by the built-in 'vq'; this one is 'shadow:vq']" in laser(capsys, "plugins")
    assert "name: vq\n" in laser(capsys, "validate", recipe)
    final = json.loads((run_dir / "metrics.json").read_text())
    evaluated = json.loads(laser(capsys, "eval", str(run_dir)))["metrics"]
    assert evaluated["psnr"] == pytest.approx(final["psnr"], rel=1e-4)
    laser(capsys, "export", str(run_dir), "--out", str(tmp_path / "export"))
    metadata = json.loads((tmp_path / "export" / "metadata.json").read_text())
    assert metadata["bottleneck"]["name"] == "vq"
    image = tmp_path / "photo.png"
    Image.new("RGB", (16, 16), (200, 40, 90)).save(image)
    laser(capsys, "compress", str(run_dir), str(image), "-o", str(tmp_path / "photo.lsr"))
    laser(capsys, "run", recipe, "--run-dir", str(tmp_path / "again"))
    used = json.loads((tmp_path / "again" / "plugins.json").read_text())["components"]
    assert used["bottleneck"]["distribution"] == "laser"


def test_a_run_of_a_qualified_plugin_reopens_with_it_or_says_it_is_gone(
    tmp_path, write_recipe, capsys, monkeypatch
):
    use(monkeypatch, (ShadowPlugin(), SHADOW))
    recipe, run_dir = str(write_recipe(RECIPE)), tmp_path / "run"
    laser(
        capsys,
        "run",
        recipe,
        "bottleneck=" + json.dumps({"name": "shadow:vq"}),
        "--run-dir",
        str(run_dir),
    )
    assert "name: shadow:vq" in (run_dir / "recipe.yaml").read_text()
    assert "psnr" in json.loads(laser(capsys, "eval", str(run_dir)))["metrics"]
    assert isinstance(load_run(run_dir).model.bottleneck, SignBottleneck)
    use(monkeypatch)  # the plugin is uninstalled
    assert main(["eval", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert f"{run_dir / 'recipe.yaml'}:" in err
    assert "bottleneck 'shadow:vq' was provided by plugin shadow (laser-shadow 1.0)" in err
    assert "not installed" in err and "install laser-shadow 1.0" in err
