"""What ``laser export``, ``laser analyze`` and ``laser task`` do, as library functions the CLI
calls."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from laser_core.downstream.export.store import Export, Format, open_export
from laser_core.downstream.export.verify import verify as verify_export
from laser_core.downstream.export.writer import ExportResult, Split, export
from laser_core.rundir.providers import load_run_recipe
from laser_core.runs.load import check_run, dataset_overrides, load_run
from laser_core.runs.tasks import run_task

if TYPE_CHECKING:
    from laser_core.downstream.analyze import Analysis


@dataclass
class ExportReport:
    """What an export call wrote (``result``), the export as it now stands (its metadata gives
    every array's shape and dtype and the compression ratio) and, with ``verify``, the PSNR and
    SSIM of images decoded from each stored form."""

    result: ExportResult
    export: Export
    verified: dict[str, dict[str, float]] | None


def export_run(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str],
    dataset: dict[str, Any] | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    split: Split = "val",
    format: Format = "safetensors",
    verify: bool = False,
) -> ExportReport:
    """Latents and codes of a finished run on ``split`` of its dataset, or of ``dataset`` (a
    data block such as ``{"name": "digits"}``), into ``out``: what ``laser export`` does.
    Rerunning it resumes an interrupted export."""
    replaced = dataset_overrides(dataset) if dataset is not None else []
    run = load_run(Path(run_dir), [*replaced, *overrides])
    result = export(run, Path(out), split, format)
    exported = open_export(Path(out))
    return ExportReport(result, exported, verify_export(run, exported) if verify else None)


def rerun_task(
    run_dir: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = ()
) -> dict[str, float]:
    """Run a finished run's ``task:`` block again, changed by ``overrides`` (e.g.
    ``["task.classifier=mlp"]``), merging its numbers into metrics.json: ``laser task``."""
    run_dir = Path(run_dir)
    check_run(run_dir)  # before its recipe is parsed
    return run_task(load_run_recipe(run_dir, overrides), run_dir)


def analyze_export(
    export_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
) -> Analysis:
    """Plots of an export and a one-page ``report.html`` in ``out`` (default
    ``EXPORT_DIR/analysis``): what ``laser analyze`` does."""
    from laser_core.downstream.analyze import analyze  # matplotlib: a second to import

    return analyze(Path(export_dir), None if out is None else Path(out))
