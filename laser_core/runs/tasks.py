"""Running a recipe's ``task:`` block on a finished run directory and reporting its numbers.

``laser run`` calls :func:`run_task` after training, ``laser task`` on an existing run. The
task's results join metrics.json as ``task/<key>`` (replacing those of an earlier task run)
and print as a table whose rows and columns come from keys of the form ``row/column``.
"""

from __future__ import annotations

from pathlib import Path

from laser_core.assembly.build import build_component
from laser_core.errors import LaserError
from laser_core.recipes.model import Recipe
from laser_core.rundir import manifest
from laser_core.rundir.layout import RunDir

PREFIX = "task/"


def run_task(recipe: Recipe, run_dir: Path) -> dict[str, float]:
    """Run ``recipe.task`` on ``run_dir`` and merge its results into metrics.json."""
    if recipe.task is None:
        raise LaserError(f"{recipe.source} has no task block; add one, e.g. `task.name=classify`")
    results = build_component("tasks", recipe.task).run(run_dir)
    files = RunDir(run_dir)
    metrics = files.read_final_metrics()
    kept = {key: value for key, value in metrics.items() if not key.startswith(PREFIX)}
    files.write_final_metrics({**kept, **{PREFIX + key: value for key, value in results.items()}})
    manifest.reseal(run_dir, [RunDir.METRICS])
    return results


def format_table(results: dict[str, float]) -> str:
    """``row/column`` keys as a text table, rows and columns in order of appearance; a key
    without '/' is a row with one ``value`` column."""
    rows: dict[str, dict[str, float]] = {}
    for key, value in results.items():
        row, _, column = key.rpartition("/") if "/" in key else (key, "", "value")
        rows.setdefault(row, {})[column] = value
    columns = list(dict.fromkeys(column for cells in rows.values() for column in cells))
    width = max(len(row) for row in rows)
    lines = [f"{'':<{width}}  " + "  ".join(f"{column:>14}" for column in columns)]
    for row, cells in rows.items():
        shown = (f"{cells[c]:>14.4g}" if c in cells else f"{'':>14}" for c in columns)
        lines.append(f"{row:<{width}}  " + "  ".join(shown))
    return "\n".join(lines)
