"""Base recipes shipped inside installed packages, so a recipe copied anywhere can extend them.

``extends: [laser:base/cpu_small.yaml]`` names ``base/cpu_small.yaml`` inside LASER's own
recipes (``laser`` stands for the package ``laser_core.recipes``); a plugin package ships its
bases the same way and recipes name them ``my_plugin:recipes/base.yaml`` (any importable
package, then a path inside it). Anything else is a path relative to the recipe.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from laser_core.errors import Problem, RecipeError

ALIASES = {"laser": "laser_core.recipes"}
"""Short names for packages that ship bases."""

_PACKAGE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def resolve_base(reference: str, recipe: Path, where: str, key: str) -> Path:
    """The file ``reference`` (an ``extends:`` entry written at ``where``) names."""
    package, sep, inner = reference.partition(":")
    # one letter before the colon is a Windows drive (C:/recipes/base.yaml), not a package
    if not sep or len(package) < 2 or not _PACKAGE.fullmatch(package):
        path = recipe.parent / reference
        if not path.is_file():
            message = f"no such file {path} (the path is relative to this recipe)"
            raise RecipeError([Problem(where, key, message)])
        return path
    return _packaged(ALIASES.get(package, package), inner, reference, where, key)


def _packaged(package: str, inner: str, reference: str, where: str, key: str) -> Path:
    def fail(message: str) -> RecipeError:
        return RecipeError([Problem(where, key, f"'{reference}': {message}")])

    try:
        root = resources.files(package)
    except ModuleNotFoundError:
        raise fail(
            f"no installed package '{package}'; install the plugin that ships this base, "
            "or give a path relative to this recipe"
        ) from None
    except Exception as error:  # importing a plugin package runs its code
        raise fail(f"importing '{package}' failed: {type(error).__name__}: {error}") from None
    resource = root.joinpath(inner)
    if not inner or not resource.is_file():
        parent = Path(inner).parent
        folder = root.joinpath(str(parent))
        prefix = reference.partition(":")[0]
        shipped = sorted(
            f"{prefix}:{(parent / item.name).as_posix()}"
            for item in (folder.iterdir() if folder.is_dir() else ())
            if item.name.endswith(".yaml")
        )
        listing = f"; it ships {', '.join(shipped)}" if shipped else ""
        raise fail(f"package '{package}' has no file '{inner}'{listing}")
    return Path(str(resource))
