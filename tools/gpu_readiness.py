"""Compile every Triton kernel of laser_core.ops ahead of time for sm_90 and sm_80 at the shapes
of the recipes and benchmarks (no GPU needed) and print ptxas's resource report as a Markdown
table; with --write, replace the table in docs/benchmarks.md ("GPU readiness").

    python tools/gpu_readiness.py            # print the table
    python tools/gpu_readiness.py --write    # update docs/benchmarks.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

import triton
from doc_section import write_section

from laser_core.ops.triton_aot import (
    SHARED_MEMORY_LIMIT,
    Resources,
    nearest_code_resources,
    omp_resources,
)

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
START, END = "<!-- gpu-readiness table: start -->", "<!-- gpu-readiness table: end -->"


def table() -> str:
    lines = [
        f"Triton {triton.__version__}; limits: shared memory per block "
        + ", ".join(f"sm_{a} {b // 1024} KiB" for a, b in SHARED_MEMORY_LIMIT.items())
        + ".",
        "",
        "| kernel | shape | arch | warps | registers | spill stores (B) | spill loads (B) "
        "| stack (B) | shared memory (B) | fits |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for arch in SHARED_MEMORY_LIMIT:
        for row in omp_resources(arch) + nearest_code_resources(arch):
            if isinstance(row, Resources):
                lines.append(
                    f"| {row.kernel} | {row.shape} | sm_{row.arch} | {row.num_warps} "
                    f"| {row.registers} | {row.spill_stores} | {row.spill_loads} | {row.stack} "
                    f"| {row.shared} | {'yes' if row.fits else 'NO'} |"
                )
            else:
                shape, why = row.split(": ", 1)
                lines.append(f"| _batch_omp_kernel | {shape} | sm_{arch} | {why} |||||||")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    text = table()
    if not args.write:
        print(text)
        return
    write_section(DOC, START, END, text)


if __name__ == "__main__":
    main()
