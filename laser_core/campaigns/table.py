"""The comparison table: one row per run with its final metrics and only the recipe keys that
differ between the runs, sorted by a chosen metric (best first)."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

from laser_core.campaigns.collect import RunRecord

LOWER_IS_BETTER = {"mse", "lpips", "fid", "kid", "loss", "recon", "bpp"}
"""Metrics sorted ascending; every other metric sorts descending."""


@dataclass
class Table:
    columns: list[str]
    rows: list[dict[str, Any]]

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |"]
        lines.append("| " + " | ".join("---" for _ in self.columns) + " |")
        for row in self.rows:
            cells = [_cell(row.get(c)).replace("|", "\\|") for c in self.columns]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def csv(self) -> str:
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({c: row.get(c, "") for c in self.columns} for row in self.rows)
        return text.getvalue()


def differing_keys(runs: list[RunRecord]) -> list[str]:
    """Recipe keys whose value is not the same in every run, in recipe order."""
    keys = list(dict.fromkeys(k for run in runs for k in run.recipe))
    missing = object()
    return [k for k in keys if len({repr(run.recipe.get(k, missing)) for run in runs}) > 1]


def comparison(runs: list[RunRecord], sort: str | None) -> Table:
    metrics = list(dict.fromkeys(k for run in runs for k in run.final if k != "step"))
    keys = differing_keys(runs)
    rows = [
        {
            "run": run.label,
            "state": run.state,
            **{k: run.recipe.get(k) for k in keys},
            "step": run.final.get("step"),
            **{m: run.final.get(m) for m in metrics},
        }
        for run in runs
    ]
    sort = sort or ("psnr" if "psnr" in metrics else (metrics[0] if metrics else None))
    if sort is not None:
        sign = 1 if sort in LOWER_IS_BETTER else -1
        rows.sort(key=lambda r: _sort_key(r.get(sort), sign))
    return Table(["run", "state", *keys, "step", *metrics], rows)


def _sort_key(value: Any, sign: int) -> tuple[int, float]:
    if isinstance(value, int | float) and not math.isnan(value):
        return (0, sign * value)
    return (1, 0.0)  # runs without the metric last


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
