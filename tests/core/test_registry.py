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
from laser_core.plugin.contracts import (
    KINDS,
    BuildContext,
    ComponentConfig,
    DatasetConfig,
    DiscriminatorConfig,
)
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


def test_a_registered_class_is_built_as_its_factory_and_summarised_by_its_docstring():
    class Scaled(nn.Identity):
        """Scales nothing yet: the identity.

        Everything after the first line stays out of the summary."""

        def __init__(self, config: WidthConfig, context: BuildContext):
            super().__init__()
            self.width, self.latent_dim = config.width, context.latent_dim

    class Plugin:
        @hookimpl
        def laser_register_encoders(self, register):
            register("scaled", Scaled, config=WidthConfig)
            register("plain", Scaled, config=WidthConfig, summary="said by the plugin")

    def build_plain(config: WidthConfig, context: BuildContext) -> nn.Module:
        """A function's docstring summarises it too.

        Not this line."""
        return nn.Identity()

    Plugin.laser_register_decoders = hookimpl(
        lambda self, register: register("function", build_plain, config=WidthConfig)
    )
    registry = registry_with(("scaled", Plugin()))
    summary = registry.get("decoders", "function").summary
    assert summary == "A function's docstring summarises it too"
    component = registry.get("encoders", "scaled")
    assert component.summary == "Scales nothing yet: the identity"
    assert registry.get("encoders", "plain").summary == "said by the plugin"
    built = component.factory(WidthConfig(width=7), BuildContext(latent_dim=5))
    assert isinstance(built, Scaled) and (built.width, built.latent_dim) == (7, 5)


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
    assert listing.returncode == 1 and "vq" in listing.stdout  # lists, and says it failed
    assert "broken_plugin (broken_plugin 0.1): ImportError: needs libfoo" in listing.stdout
    assert f"(at {tmp_path / 'broken_plugin.py'}:1)" in listing.stdout
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


# -- a plugin that registers a built-in's name ------------------------------------------------


def builtin(plugin: str) -> Provider:
    return Provider(plugin, "laser", "0.1.0")


def test_a_bare_name_means_the_built_in_and_the_qualified_name_the_plugin():
    registry = Registry()
    registry.add_plugin(_Plugin("bottlenecks", "vq"), Provider("fancy", "laser-fancy", "2.0"))
    registry.add_plugin(_Plugin("bottlenecks", "vq"), builtin("vq"))
    assert registry.get("bottlenecks", "vq").provider == builtin("vq")
    assert registry.get("bottlenecks", "fancy:vq").provider.plugin == "fancy"
    assert registry.get("bottlenecks", "laser-fancy:vq").provider.plugin == "fancy"
    assert registry.get("bottlenecks", "laser:vq").provider == builtin("vq")
    # what a recipe records: bare for the built-in, qualified for the plugin
    assert [c.reference for c in registry.of_kind("bottlenecks")] == ["fancy:vq", "vq"]


def test_a_pinned_provider_picks_its_component_or_says_it_is_gone():
    registry = Registry()
    fancy = Provider("fancy", "laser-fancy", "2.0")
    registry.add_plugin(_Plugin("bottlenecks", "vq"), builtin("vq"))
    registry.add_plugin(_Plugin("bottlenecks", "vq"), fancy)
    assert registry.get("bottlenecks", "vq", pinned=fancy).provider == fancy
    # a newer version of the recorded plugin still serves the run
    newer = Provider("fancy", "laser-fancy", "3.0")
    assert registry.get("bottlenecks", "vq", pinned=newer).provider == fancy
    gone = Provider("old", "laser-old", "0.3")
    with pytest.raises(PluginError) as caught:
        registry.get("bottlenecks", "vq", pinned=gone)
    message = str(caught.value)
    assert "provided by plugin old (laser-old 0.3), which is not installed" in message
    assert "'vq:vq' from vq (laser 0.1.0)" in message and "install laser-old 0.3" in message


def test_plugins_marks_a_shadowed_name_and_exits_non_zero_on_a_failed_plugin(monkeypatch, capsys):
    from laser_core.cli.main import main
    from laser_core.plugin import registry as registry_module

    class Exits:
        @hookimpl
        def laser_register_metrics(self, register):
            raise SystemExit(3)

    registry = Registry()
    registry.add_plugin(_Plugin("bottlenecks", "vq"), builtin("vq"))
    registry.add_plugin(_Plugin("bottlenecks", "vq"), Provider("fancy", "laser-fancy", "2.0"))
    registry.add_plugin(_Plugin("encoders", "zz"), Provider("one", "laser-one", "1.0"))
    registry.add_plugin(_Plugin("encoders", "zz"), Provider("two", "laser-two", "1.0"))
    monkeypatch.setattr(registry_module, "_default", registry)
    assert main(["plugins"]) == 0
    listing = capsys.readouterr().out
    assert "[shadowed by the built-in 'vq'; this one is 'fancy:vq']" in listing
    assert listing.count("[shadowed") == 1
    assert "[ambiguous name: write 'one:zz']" in listing
    assert "[ambiguous name: write 'two:zz']" in listing
    registry.add_plugin(Exits(), Provider("exits", "laser-exits", "1.0"))
    assert main(["plugins"]) == 1
    assert "exits (laser-exits 1.0): the plugin exited (SystemExit: 3)" in capsys.readouterr().out


# -- plugins that exit or raise anything ------------------------------------------------------


class Fatal(BaseException):
    """Not an Exception: what a careless plugin might raise."""


def test_sys_exit_or_any_base_exception_in_a_hook_is_isolated_but_ctrl_c_is_not():
    class Exits:
        @hookimpl
        def laser_register_encoders(self, register):
            raise SystemExit(3)

    class RaisesFatal:
        @hookimpl
        def laser_register_encoders(self, register):
            raise Fatal("no")

    class Interrupted:
        @hookimpl
        def laser_register_encoders(self, register):
            raise KeyboardInterrupt

    registry = registry_with(("exits", Exits()), ("fatal", RaisesFatal()))
    assert [f.provider.plugin for f in registry.failures] == ["exits", "fatal"]
    assert registry.failures[0].error.startswith("the plugin exited (SystemExit: 3) (at ")
    assert registry.failures[1].error.startswith("Fatal: no (at ")
    assert __file__ in registry.failures[1].error  # the plugin's own file
    with pytest.raises(KeyboardInterrupt):
        registry_with(("interrupted", Interrupted()))


IMPORT_FAILURES = {
    "exits_plugin": ("import sys\n\nsys.exit(3)\n", 3, "the plugin exited (SystemExit: 3)"),
    "fatal_plugin": (
        "class Fatal(BaseException):\n    pass\n\n\nraise Fatal('at import')\n",
        5,
        "Fatal: at import",
    ),
    # the error is raised inside json; the line to blame is the plugin's own
    "json_plugin": ("import json\n\nCONFIG = json.loads('{')\n", 3, "JSONDecodeError"),
}


def test_a_plugin_failing_at_import_is_isolated_and_blamed_at_its_own_line(tmp_path, monkeypatch):
    for name, (source, _, _) in IMPORT_FAILURES.items():
        _install_fake_distribution(tmp_path, name, source)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry()
    registry.load_entry_points(disabled=set())
    failures = {f.provider.plugin: f.error for f in registry.failures}
    for name, (_, line, error) in IMPORT_FAILURES.items():
        assert failures[name].startswith(error), failures[name]
        assert failures[name].endswith(f"(at {tmp_path / name}.py:{line})"), failures[name]
    assert registry.get("bottlenecks", "vq").provider.builtin


def test_the_schema_gives_the_bare_name_to_the_built_in_only():
    from laser_core.recipes.schema import recipe_schema

    registry = Registry()
    registry.add_plugin(_Plugin("bottlenecks", "vq"), builtin("vq"))
    registry.add_plugin(_Plugin("bottlenecks", "vq"), Provider("fancy", "laser-fancy", "2.0"))
    branches = recipe_schema(registry)["properties"]["bottleneck"]["allOf"]
    tags = sorted(branch["if"]["properties"]["name"]["enum"] for branch in branches)
    assert tags == [["fancy:vq"], ["vq", "vq:vq"]]


def test_shipped_recipes_keep_their_built_ins_when_plugins_shadow_every_name():
    from laser_core.recipes.model import load_recipe
    from tests.helpers import shipped_recipes

    registry = Registry()
    registry.load_entry_points(disabled=set())
    for kind in KINDS:
        for component in list(registry.of_kind(kind)):
            shadow = _Plugin(kind, component.name, HOOK_EXAMPLES[kind])
            registry.add_plugin(
                shadow, Provider(f"shadow-{kind}-{component.name}", "laser-shadow", "9")
            )
    assert not registry.failures
    for path in shipped_recipes():
        recipe = load_recipe(path, registry=registry)
        providers = recipe.map_blocks(lambda block: block.component.provider.distribution)
        flat = [
            p
            for value in providers.values()
            for p in (value if isinstance(value, list) else [value])
        ]
        assert set(flat) == {"laser"}, path
