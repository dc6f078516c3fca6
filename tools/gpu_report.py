"""Write the tables of a gpu_check.json (tools/gpu_check.sh) into docs/benchmarks.md.

python tools/gpu_report.py gpu-check/gpu_check.json            # update docs/benchmarks.md
python tools/gpu_report.py gpu-check/gpu_check.json --doc OUT  # another copy of the page
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from doc_section import write_section

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
START, END = "<!-- gpu-check tables: start -->", "<!-- gpu-check tables: end -->"
COLUMNS = {
    "omp": [
        "shape",
        "implementation",
        "ns_per_signal",
        "laser_speedup",
        "support_agreement",
        "relative_error",
        "peak_gib",
        "note",
    ],
    "vq": ["shape", "implementation", "ns_per_vector", "speedup_over_peer", "peak_gib", "note"],
    "sweeps": ["sweep", "shape", "eager_ms", "graph_ms", "eager_over_graph", "max_abs_diff_vs_cpu"],
    "syncs": ["recipe", "step", "sync", "site", "expected"],
}


def cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}"
    return "" if value is None else str(value)


def table(rows: list[dict], columns: list[str]) -> list[str]:
    return [
        "| " + " | ".join(columns) + " |",
        "|" + " --- |" * len(columns),
        *("| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows),
    ]


def render(results: dict) -> str:
    machine = results.get("machine", {})
    lines = [
        "Machine: " + ", ".join(f"{k} {v}" for k, v in machine.items()),
        "",
        *table(results.get("steps", []), ["step", "budget_s", "seconds", "exit"]),
    ]
    for name, columns in COLUMNS.items():
        lines += ["", f"### {name}", ""]
        rows = results.get(name)
        lines += table(rows, columns) if rows else ["not measured in this run"]
    vqgan = results.get("vqgan")
    lines += ["", "### vqgan", ""]
    if vqgan:
        rows = [{"loop": k, **vqgan[k]} for k in ("laser", "hand_written")]
        lines += table(rows, ["loop", "images_per_second", "peak_gib"])
        lines += ["", f"LASER over the hand-written loop: {vqgan['laser_over_hand_written']:.3f}"]
    else:
        lines.append("not measured in this run")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--doc", type=Path, default=None, help="write here, not to the docs")
    args = parser.parse_args()
    text = render(json.loads(args.results.read_text()))
    write_section(DOC, START, END, text, out=args.doc)


if __name__ == "__main__":
    main()
