"""``laser compare``: the table (markdown, CSV), the curves, and a one-page ``report.html``
with curves, table, every run's latest reconstruction grid side by side, and rate-distortion
points where ``laser rd`` results are given."""

from __future__ import annotations

import base64
import csv
import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from laser_core.campaigns.collect import RunRecord, collect
from laser_core.campaigns.curves import plot_curves
from laser_core.campaigns.table import Table, comparison
from laser_core.errors import LaserError
from laser_core.files import atomic_write_text


@dataclass
class Comparison:
    runs: list[RunRecord]
    table: Table
    out: Path


def compare(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    sort: str | None = None,
    rd: str | os.PathLike[str] | None = None,
) -> Comparison:
    """Write OUT/table.md, OUT/table.csv, OUT/curves/*.png, OUT/report.html (and OUT/rd.png
    with ``rd``, a ``laser rd`` output folder or its rd.csv)."""
    runs = collect([Path(path) for path in paths])
    out = Path(out)
    table = comparison(runs, sort)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "table.md", table.markdown())
    atomic_write_text(out / "table.csv", table.csv())
    curves = plot_curves(runs, out / "curves")
    rd_plot = _rd_points(Path(rd), runs, out / "rd.png") if rd else None
    atomic_write_text(out / "report.html", _html(runs, table, curves, rd_plot))
    return Comparison(runs, table, out)


def _rd_points(rd: Path, runs: list[RunRecord], path: Path) -> Path:
    from laser_core.coding.rd import mean_rows, plot

    csv_path = rd / "rd.csv" if rd.is_dir() else rd
    if not csv_path.is_file():
        raise LaserError(f"--rd {rd}: no rd.csv there; `laser rd RUN... -o OUT` writes one")
    rows = [
        {k: _number(v) for k, v in row.items()}
        for row in csv.DictReader(csv_path.read_text().splitlines())
    ]
    names = {run.path.name for run in runs} | {run.label for run in runs}
    kept = [r for r in rows if r["codec"] in names or r["codec"] in {"JPEG", "WebP"}]
    if not kept:
        raise LaserError(f"{csv_path} has no rows for these runs")
    means = mean_rows(kept)
    metrics = [m for m in ("psnr", "ssim", "lpips") if m in means[0]]
    plot(means, metrics, path)
    return path


def _number(text: str) -> str | float | int:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _html(runs: list[RunRecord], table: Table, curves: list[Path], rd: Path | None) -> str:
    training = [run.label for run in runs if run.state != "done"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>laser compare</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "img{max-width:100%}.grid{display:flex;flex-wrap:wrap;gap:1em}"
        ".grid figure{margin:0}</style></head><body>",
        f"<h1>{len(runs)} runs</h1>",
    ]
    if training:
        parts.append(
            f"<p>Not finished (latest validation shown): {html.escape(', '.join(training))}</p>"
        )
    parts.append("<h2>Final metrics</h2>" + _table_html(table))
    parts.append("<h2>Curves</h2><div class='grid'>")
    parts += [f"<figure>{_img(p, 420)}</figure>" for p in curves]
    parts.append(
        "</div><h2>Reconstructions</h2><p>Originals above reconstructions, the first "
        "validation images of each run.</p><div class='grid'>"
    )
    for run in runs:
        if run.grid is not None:
            caption = html.escape(f"{run.label} ({run.grid.stem})")
            parts.append(
                f"<figure>{_img(run.grid, 360)}<figcaption>{caption}</figcaption></figure>"
            )
    parts.append("</div>")
    if rd is not None:
        parts.append(f"<h2>Rate-distortion</h2>{_img(rd, 900)}")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _table_html(table: Table) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(_text(row.get(c)))}</td>" for c in table.columns)
        + "</tr>"
        for row in table.rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _text(value: object) -> str:
    if value is None:
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _img(path: Path, width: int) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return (
        f"<img width='{width}' src='data:image/png;base64,{data}' alt='{html.escape(path.name)}'>"
    )
