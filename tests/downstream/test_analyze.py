"""`laser analyze` draws every plot that applies, for an image and a video export, and links
them all from one HTML page."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from laser_core import cli
from laser_core.downstream.analyze import TITLES, analyze
from laser_core.downstream.export.store import open_export
from laser_core.downstream.export.writer import export
from laser_core.runs.load import load_run

pytestmark = pytest.mark.slow


def assert_plots_and_report(folder: Path, expected: set[str]) -> None:
    report = (folder / "report.html").read_text()
    for name in expected:
        with Image.open(folder / f"{name}.png") as image:
            assert image.format == "PNG" and min(image.size) > 100, name
        assert f'src="{name}.png"' in report, name


def test_analyze_writes_every_plot_for_an_image_export(digits_run, tmp_path):
    export(load_run(digits_run[0]), tmp_path / "export", "val", "safetensors")
    analysis = analyze(tmp_path / "export")
    assert set(analysis.plots) == set(TITLES) - {"temporal"}
    assert set(analysis.skipped) == {"temporal"}  # images have no frames
    # perplexity is exp of the entropy of the exported codes' frequencies
    indices = open_export(tmp_path / "export").load(("indices",))["indices"].flatten()
    frequencies = torch.bincount(indices.long(), minlength=32).double() / indices.numel()
    used = frequencies[frequencies > 0]
    expected = math.exp(-(used * used.log()).sum().item())
    assert len(analysis.perplexities) == 1 and 2 < expected < 32
    assert analysis.perplexities[0] == pytest.approx(expected, rel=1e-6)
    assert_plots_and_report(tmp_path / "export" / "analysis", set(analysis.plots))
    assert (
        "Change between frames: an image export has no frames"
        in (tmp_path / "export" / "analysis" / "report.html").read_text()
    )


def test_analyze_writes_every_plot_for_a_video_export(video_run, tmp_path, capsys):
    root = tmp_path / "export"
    assert cli.main(["export", str(video_run), "--out", str(root), "--format", "npy"]) == 0
    assert cli.main(["analyze", str(root), "--out", str(tmp_path / "plots")]) == 0
    assert_plots_and_report(tmp_path / "plots", set(TITLES))
    assert f"wrote {len(TITLES)} plots" in capsys.readouterr().out
