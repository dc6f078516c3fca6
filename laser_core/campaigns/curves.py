"""Training and validation curves: one PNG per logged metric, a line per run."""

from __future__ import annotations

import re
from pathlib import Path

from laser_core.campaigns.collect import RunRecord
from laser_core.files import atomic_write


def plot_curves(runs: list[RunRecord], folder: Path) -> list[Path]:
    """``folder/{val,train}-METRIC.png`` for every numeric key the runs logged."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    written = []
    for split in ("val", "train"):
        keys = list(
            dict.fromkeys(
                k
                for run in runs
                for r in run.records
                if r["split"] == split
                for k, v in r.items()
                if k not in {"step", "split"} and isinstance(v, int | float)
            )
        )
        for key in keys:
            figure, axis = plt.subplots(figsize=(6, 4))
            for run in runs:
                points = [
                    (r["step"], r[key]) for r in run.records if r["split"] == split and key in r
                ]
                if points:
                    steps, values = zip(*points, strict=True)
                    style = "-" if run.state == "done" else "--"
                    label = run.label if run.state == "done" else f"{run.label} ({run.state})"
                    axis.plot(
                        steps, values, style, marker="." if len(points) < 30 else None, label=label
                    )
            axis.set_xlabel("step")
            axis.set_ylabel(key)
            axis.set_title(f"{split} {key}")
            axis.grid(alpha=0.3)
            axis.legend(fontsize="small")
            figure.tight_layout()
            path = folder / f"{split}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', key)}.png"
            atomic_write(path, lambda temporary, f=figure: f.savefig(temporary, format="png"))
            plt.close(figure)
            written.append(path)
    return written
