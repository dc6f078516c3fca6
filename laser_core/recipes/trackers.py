"""Which trackers a recipe may name: Accelerate's log_with names whose package is installed,
checked while the recipe is validated, before anything trains."""

from __future__ import annotations

import importlib.util
from typing import Any

# tracker (Accelerate's log_with name) -> the module it needs; the pip extra has its name
PACKAGES = {
    "tensorboard": "tensorboard",
    "wandb": "wandb",
    "mlflow": "mlflow",
    "trackio": "trackio",
    "aim": "aim",
}


def check_tracker(entry: dict[str, Any]) -> dict[str, Any]:
    """A known tracker whose package is installed, else a ValueError for the recipe's
    validation, which locates it (file:line) and names the extra to install."""
    name = entry.get("name")
    if name not in PACKAGES:
        raise ValueError(f"unknown tracker {name!r} (trackers: {', '.join(PACKAGES)})")
    if importlib.util.find_spec(PACKAGES[name]) is None:
        raise ValueError(
            f"tracker '{name}' needs the {PACKAGES[name]} package: pip install 'laser[{name}]'"
        )
    return dict(entry)
