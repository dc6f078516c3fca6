"""``laser export``, ``laser analyze`` and ``laser task``: what a finished run directory feeds
downstream. Added to the ``laser`` parser by :func:`add_commands`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import yaml

from laser_core.errors import LaserError


def add_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add the commands through the CLI's ``command(name, handler, help)``."""
    sub = command("export", _export, "write a finished run's latents and codes for a dataset")
    sub.add_argument("run_dir", type=Path)
    sub.add_argument("overrides", nargs="*", help="recipe overrides, e.g. data.batch_size=256")
    sub.add_argument(
        "--data", help="a dataset block in YAML, e.g. '{name: digits}'; default: the run's own"
    )
    sub.add_argument("--out", type=Path, required=True, help="export directory; reruns resume")
    sub.add_argument("--split", choices=("train", "val"), default="val")
    sub.add_argument("--format", choices=("safetensors", "npy"), default="safetensors")
    sub.add_argument(
        "--verify",
        action="store_true",
        help="decode each stored form back to images; report PSNR and SSIM, save PNGs",
    )

    sub = command("analyze", _analyze, "plots and an HTML report of an export directory")
    sub.add_argument("export_dir", type=Path)
    sub.add_argument("--out", type=Path, help="default: EXPORT_DIR/analysis")

    sub = command("task", _task, "run a finished run's task block again, e.g. classification")
    sub.add_argument("run_dir", type=Path)
    sub.add_argument("overrides", nargs="*", help="changes to the task, e.g. task.classifier=mlp")


def parse_dataset(block: str | None) -> dict | None:
    """A ``--data``/``--dataset`` argument, a YAML mapping such as '{name: digits}'."""
    if block is None:
        return None
    try:
        parsed = yaml.safe_load(block)
    except yaml.YAMLError as error:
        raise LaserError(f"dataset block {block!r} is not YAML: {error}") from None
    if not isinstance(parsed, dict):
        raise LaserError(
            f"a dataset block is a YAML mapping with a name, e.g. '{{name: digits}}'; got {block!r}"
        )
    return parsed


def _export(args: argparse.Namespace) -> None:
    from laser_core.downstream.workflow import export_run
    from laser_core.runs.tasks import format_table

    report = export_run(
        args.run_dir,
        args.out,
        parse_dataset(args.data),
        args.overrides,
        args.split,
        args.format,
        args.verify,
    )
    result, metadata = report.result, report.export.metadata
    for path in result.removed:
        print(f"removed the unfinished {path.name}")
    print(f"{args.out}: {len(result.written)} batches written, {len(result.skipped)} already there")
    for name, array in metadata["arrays"].items():
        print(f"  {name:<11} {array['dtype']:<8} {tuple(array['shape'])}  {array['axes']}")
    print(f"  compression {metadata['compression']['ratio']:.1f}x against 8-bit pixels")
    if report.verified is not None:
        rows = report.verified.items()
        print(format_table({f"{form}/{k}": v for form, row in rows for k, v in row.items()}))


def _analyze(args: argparse.Namespace) -> None:
    from laser_core.downstream.workflow import analyze_export

    analysis = analyze_export(args.export_dir, args.out)
    for name, why in analysis.skipped.items():
        print(f"no {name} plot: {why}")
    print(f"wrote {len(analysis.plots)} plots and {analysis.folder / 'report.html'}")


def _task(args: argparse.Namespace) -> None:
    from laser_core.downstream.workflow import rerun_task
    from laser_core.runs.tasks import format_table

    print(format_table(rerun_task(args.run_dir, args.overrides)))
