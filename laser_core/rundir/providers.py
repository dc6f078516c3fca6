"""Which plugin provided each component of a run, as plugins.json records it, so that a run
reopens with the components it was trained with whatever has been installed since."""

from __future__ import annotations

import json
from pathlib import Path

from laser_core.errors import LaserError
from laser_core.plugin.registry import Provider, Registry
from laser_core.recipes.model import Pins, Recipe, load_recipe
from laser_core.rundir.layout import RunDir


def load_run_recipe(
    run_dir: Path, overrides: list[str] | tuple[str, ...] = (), registry: Registry | None = None
) -> Recipe:
    """The run's recorded recipe with each block resolved to the plugin that trained it, as
    plugins.json records, whatever has been installed since; a block that ``overrides``
    renames resolves as in any recipe. An imported model's run may record no data block."""
    recipe, pins = RunDir(run_dir).recipe_yaml, recorded_providers(run_dir)
    return load_recipe(recipe, overrides, registry, pins, data_optional=True)


def recorded_providers(run_dir: Path) -> Pins:
    """plugins.json's component providers by block key; none for a run written without one."""
    path = RunDir(run_dir).plugins_json
    if not path.is_file():
        return {}
    try:
        components = json.loads(path.read_text())["components"]
        entries = {key: value for key, value in components.items() if key != "metrics"}
        entries |= {f"metrics.{i}": value for i, value in enumerate(components.get("metrics", []))}
        return {
            key: (entry["name"], Provider(entry["plugin"], entry["distribution"], entry["version"]))
            for key, entry in entries.items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise LaserError(
            f"{path} is damaged ({type(error).__name__}: {error}); it records which plugin "
            "provided each component of the run"
        ) from None
