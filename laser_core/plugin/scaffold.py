"""``laser new-plugin``: a plugin package that installs, registers and passes conformance."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from laser_core.errors import LaserError

NAME = re.compile(r"^[a-z][a-z0-9-]*$")


def write_plugin_package(name: str, parent: Path) -> Path:
    """Copy the template with ``__name__`` (component) and ``__module__`` (package) filled in."""
    if not NAME.match(name):
        raise LaserError(f"plugin name '{name}' must be lower-case letters, digits and '-'")
    module = "laser_" + name.replace("-", "_")
    folder = parent / f"laser-{name}"
    if folder.exists():
        raise LaserError(f"{folder} already exists; choose another name or folder")
    template = resources.files("laser_core.plugin") / "templates" / "plugin"
    _copy(template, folder, {"__name__": name, "__module__": module})
    return folder


def _copy(source, target: Path, fill: dict[str, str]) -> None:
    for entry in source.iterdir():
        if entry.name == "__pycache__":
            continue
        name = entry.name
        for key, value in fill.items():
            name = name.replace(key, value)
        if entry.is_dir():
            _copy(entry, target / name, fill)
            continue
        text = entry.read_text()
        for key, value in fill.items():
            text = text.replace(key, value)
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_text(text)
