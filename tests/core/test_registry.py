"""Plugin discovery: every hook registers components, broken plugins are contained, duplicate
names are explained, disabled plugins stay out."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from torch import nn

from laser_core import hookimpl
from laser_core.errors import PluginError
from laser_core.plugin import hookspecs
from laser_core.plugin.contracts import KINDS, ComponentConfig, DatasetConfig, DiscriminatorConfig
from laser_core.plugin.registry import Provider, Registry
from tests.helpers import REPO, run_laser


class WidthConfig(ComponentConfig):
    width: int = 4


class DiscriminatorWidthConfig(DiscriminatorConfig):
    width: int = 4


class _Plugin:
    """A real plugin object: one hook implementation registering ``name`` for ``kind``."""

    def __init__(self, kind: str, name: str, config: type = WidthConfig):
        def register_hook(register):
            register(name, lambda config, context: nn.Identity(), config=config, summary="t")

        register_hook.__name__ = f"laser_register_{kind}"
        setattr(self, register_hook.__name__, hookimpl(register_hook))


def registry_with(*plugins: tuple[str, object]) -> Registry:
    registry = Registry()
    for plugin_name, plugin in plugins:
        registry.add_plugin(plugin, Provider(plugin_name, f"dist-{plugin_name}", "1.0"))
    return registry


HOOK_EXAMPLES = {kind: WidthConfig for kind in KINDS} | {
    "datasets": DatasetConfig,
    "discriminators": DiscriminatorWidthConfig,
}


def test_every_hookspec_has_a_test_here_and_a_doc_entry():
    specs = {name for name in dir(hookspecs) if name.startswith("laser_register_")}
    assert specs == {f"laser_register_{kind}" for kind in HOOK_EXAMPLES}
    guide = (REPO / "docs" / "writing-plugins.md").read_text()
    undocumented = [spec for spec in specs if spec not in guide]
    assert not undocumented, f"hooks missing from docs/writing-plugins.md: {undocumented}"


@pytest.mark.parametrize("kind", KINDS)
def test_each_hook_registers_a_component_of_its_kind(kind):
    registry = registry_with(("mine", _Plugin(kind, "thing", HOOK_EXAMPLES[kind])))
    component = registry.get(kind, "thing")
    assert component.provider.plugin == "mine" and component.kind == kind
    assert [c.name for c in registry.of_kind(kind)] == ["thing"]


def test_two_plugins_with_one_name_is_an_error_naming_both():
    registry = registry_with(
        ("one", _Plugin("bottlenecks", "vq")), ("two", _Plugin("bottlenecks", "vq"))
    )
    with pytest.raises(PluginError) as caught:
        registry.get("bottlenecks", "vq")
    assert "'one:vq' from one (dist-one 1.0)" in str(caught.value)
    assert "'two:vq' from two (dist-two 1.0)" in str(caught.value)
    assert registry.get("bottlenecks", "two:vq").provider.plugin == "two"
    assert registry.get("bottlenecks", "dist-one:vq").provider.plugin == "one"


def test_a_plugin_whose_hook_raises_is_recorded_and_registers_nothing():
    class Broken:
        @hookimpl
        def laser_register_encoders(self, register):
            register("half", lambda c, x: nn.Identity())
            raise RuntimeError("boom")

    registry = registry_with(("broken", Broken()), ("fine", _Plugin("encoders", "ok")))
    assert [c.name for c in registry.of_kind("encoders")] == ["ok"]
    assert "RuntimeError: boom" in registry.failures[0].error
    with pytest.raises(PluginError, match=r"broken .* failed to load .*boom"):
        registry.get("encoders", "half")


def test_misspelt_hook_fails_loudly_with_a_suggestion():
    class Misspelt:
        @hookimpl
        def laser_register_bottleneck(self, register):
            register("x", lambda c, x: nn.Identity())

    registry = registry_with(("typo", Misspelt()))
    assert "did you mean 'laser_register_bottlenecks'" in registry.failures[0].error


def test_register_rejects_a_config_that_accepts_unknown_keys():
    from pydantic import BaseModel

    class Loose(BaseModel):
        width: int = 1

    registry = registry_with(("loose", _Plugin("encoders", "x", Loose)))
    assert "config must subclass laser_core.ComponentConfig" in registry.failures[0].error


def _install_fake_distribution(site: Path, name: str, module_source: str) -> None:
    """A dist-info with a `laser` entry point, as pip would leave it, on a PYTHONPATH dir."""
    (site / f"{name}.py").write_text(textwrap.dedent(module_source))
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[laser]\n{name} = {name}\n")


@pytest.mark.slow
def test_plugin_that_raises_on_import_leaves_laser_working(tmp_path, write_recipe):
    _install_fake_distribution(tmp_path, "broken_plugin", "raise ImportError('needs libfoo')\n")
    env = {"PYTHONPATH": str(tmp_path)}
    assert run_laser("--help", env=env).returncode == 0
    listing = run_laser("plugins", env=env)
    assert listing.returncode == 0 and "vq" in listing.stdout
    assert "broken_plugin (broken_plugin 0.1): ImportError: needs libfoo" in listing.stdout
    from tests.helpers import TINY_RECIPE

    assert run_laser("validate", str(write_recipe(TINY_RECIPE)), env=env).returncode == 0
    uses_it = write_recipe(TINY_RECIPE.replace("name: vq,", "name: broken_plugin:fancy,"), "b.yaml")
    failed = run_laser("validate", str(uses_it), env=env)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "broken_plugin" in failed.stderr and "needs libfoo" in failed.stderr


@pytest.mark.slow
def test_disabled_and_duplicated_entry_points(tmp_path):
    source = """
        from laser_core import hookimpl
        from torch import nn

        @hookimpl
        def laser_register_encoders(register):
            register("echo", lambda config, context: nn.Identity(), summary="echo encoder")
    """
    first, second = tmp_path / "a", tmp_path / "b"
    for site in (first, second):  # an editable install can expose one plugin twice
        site.mkdir()
        _install_fake_distribution(site, "echo_plugin", source)
    env = {"PYTHONPATH": f"{first}:{second}"}
    listing = run_laser("plugins", env=env)
    assert "echo" in listing.stdout and "more than one" not in listing.stdout + listing.stderr
    hidden = run_laser("plugins", env={**env, "LASER_DISABLE_PLUGINS": "echo_plugin,vq"})
    assert "echo" not in hidden.stdout
    assert " vq " not in hidden.stdout.split("bottlenecks:")[1].split("decoders:")[0]
