"""``laser sweep`` and ``laser compare``: parse and print; the work is in this package's other
modules. Added to the ``laser`` parser by :func:`add_commands`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import yaml

from laser_core.errors import LaserError


def add_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the commands through the CLI's ``command(name, handler, help)``."""
    sub = command("sweep", _sweep, "run every combination of a recipe's axes, resumably")
    sub.add_argument(
        "recipe",
        nargs="?",
        type=Path,
        help="a recipe, or a sweep file (YAML with recipe:, axes:, zip:, executor:); "
        "omitted: rerun the sweep in --sweep-dir",
    )
    sub.add_argument(
        "overrides",
        nargs="*",
        help="key=v1,v2,v3 is an axis (crossed with the others); key=v applies to every run",
    )
    sub.add_argument("--sweep-dir", type=Path, required=True, help="runs, logs and status table")
    sub.add_argument(
        "--zip",
        nargs="+",
        action="append",
        default=[],
        metavar="AXIS",
        help="axes that advance together (equal lengths): --zip a=1,2 b=x,y",
    )
    sub.add_argument("--executor", choices=("local", "submitit"), help="default: local")
    sub.add_argument("--jobs", type=int, help="runs at a time (local) or array parallelism")
    sub.add_argument("--gpus-per-job", type=int, help="several: accelerate launch per job")
    sub.add_argument("--retry-failed", action="store_true", help="run failed runs again")

    sub = command("compare", _compare, "table, curves and an HTML report of runs or sweeps")
    sub.add_argument("paths", nargs="+", type=Path, metavar="RUN_OR_SWEEP_DIR")
    sub.add_argument("-o", "--out", type=Path, required=True, help="output folder")
    sub.add_argument("--sort", metavar="METRIC", help="default: psnr (best first)")
    sub.add_argument("--rd", type=Path, help="a `laser rd` output folder, for RD points")


def _sweep(args: argparse.Namespace) -> int:
    from laser_core import run_sweep
    from laser_core.campaigns import definition
    from laser_core.campaigns.axes import parse_override, split_arguments
    from laser_core.campaigns.runner import load_definition

    executor = {
        k: v
        for k, v in {
            "name": args.executor,
            "jobs": args.jobs,
            "gpus_per_job": args.gpus_per_job,
        }.items()
        if v is not None
    }
    axes, overrides = split_arguments(args.overrides)
    zipped = [[_as_axis(parse_override(text)) for text in group] for group in args.zip]
    recipe = args.recipe or load_definition(args.sweep_dir)
    if _is_sweep_file(recipe):
        sweep = definition.load_sweep_file(recipe, executor)
        sweep.grid += axes
        sweep.zipped += zipped
        sweep.overrides += overrides
    else:
        sweep = definition.from_arguments(recipe, axes, zipped, overrides, **executor)
    runs = sweep.runs()
    print(f"sweep of {len(runs)} runs in {args.sweep_dir} ({sweep.executor.name} executor)")
    result = run_sweep(
        sweep, args.sweep_dir, retry_failed=args.retry_failed, on_change=_print_change
    )
    print(result.table.markdown(), end="")
    counts = ", ".join(f"{n} {state}" for state, n in result.table.counts().items() if n)
    print(f"{counts}; {len(result.skipped)} were done already; table: {args.sweep_dir}/status.md")
    failed = result.table.counts()["failed"]
    if failed:
        raise LaserError(
            f"{failed} of {len(runs)} runs failed (errors above, logs in {args.sweep_dir}/logs); "
            "fix and rerun with --retry-failed"
        )
    return 0


def _print_change(status) -> None:
    took = f" in {status.seconds:.0f} s" if status.state != "running" and status.seconds else ""
    error = f": {status.error}" if status.state == "failed" else ""
    print(f"{status.state:>8} {status.name}{took}{error}", flush=True)


def _as_axis(parsed):
    from laser_core.campaigns.axes import Axis

    if not isinstance(parsed, Axis):
        raise LaserError(f"--zip takes axes (key=v1,v2,...); '{parsed}' has one value")
    return parsed


def _is_sweep_file(path: Path) -> bool:
    """A sweep file names its recipe; a recipe never has a ``recipe`` key."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return False  # load_recipe reports it, located
    return isinstance(data, dict) and "recipe" in data


def _compare(args: argparse.Namespace) -> None:
    from laser_core import compare_runs

    result = compare_runs(args.paths, args.out, args.sort, args.rd)
    print(result.table.markdown(), end="")
    print(f"wrote {args.out}/table.md, table.csv, curves/, report.html")
