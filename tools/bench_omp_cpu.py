"""Batched OMP on the CPU: LASER's ``batch_omp`` against scikit-learn's ``orthogonal_mp_gram``,
as a ratio measured in one run, at 1 and 2 torch threads; with --write, replace the table in
docs/benchmarks.md ("OMP on the CPU against scikit-learn").

    python tools/bench_omp_cpu.py            # print the table
    python tools/bench_omp_cpu.py --write    # update docs/benchmarks.md

Each config N x M x K x s codes N Gaussian signals of dimension M over a random dictionary of K
unit-norm atoms with sparsity s, in fp32. The two implementations take turns, repeat after
repeat, so a machine shared with other jobs slows both alike; each time is the median of the
repeats. scikit-learn codes the first ``--sklearn-signals`` signals (one Python-level solve per
signal), and its time per signal is compared with LASER's on all N. The load average is printed
before and after: ratios from a loaded machine are lower bounds for LASER, which needs its
caches more than scikit-learn's per-signal loop does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
from bench_bottlenecks import machine, relative_error, sklearn_omp, support_agreement
from doc_section import write_section

from laser_core.ops import batch_omp
from laser_core.plugin.contracts import Codes

CONFIGS = ["16384x64x512x8", "16384x3x16x3", "4096x256x2048x2", "16384x64x1024x16"]
"""The issue's CPU target first, then a tiny latent, a wide dictionary and a deep sparsity."""

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
START, END = "<!-- omp-cpu table: start -->", "<!-- omp-cpu table: end -->"


def median_times(
    runs: dict[str, Callable[[], Codes]], repeats: int
) -> tuple[dict[str, float], dict[str, Codes]]:
    """Median wall time in seconds of each run, the runs taking turns; and each one's codes."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    codes: dict[str, Codes] = {}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            codes[name] = run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}, codes


def rows(config: str, threads: int, sklearn_signals: int, repeats: int) -> str:
    """One table row for ``config`` at ``threads`` torch threads."""
    count, dim, atoms, sparsity = (int(x) for x in config.split("x"))
    generator = torch.Generator().manual_seed(0)
    dictionary = torch.randn(dim, atoms, generator=generator)
    dictionary /= dictionary.norm(dim=0)
    signals = torch.randn(count, dim, generator=generator)
    subset = signals[:sklearn_signals]
    torch.set_num_threads(threads)
    batch_omp(signals[:64], dictionary, sparsity)  # warm-up
    seconds, codes = median_times(
        {
            "laser": lambda: batch_omp(signals, dictionary, sparsity),
            "sklearn": lambda: sklearn_omp(subset, dictionary, sparsity),
        },
        repeats,
    )
    laser_ns = seconds["laser"] / count * 1e9
    sklearn_ns = seconds["sklearn"] / len(subset) * 1e9
    agreement = support_agreement(codes["laser"], codes["sklearn"])
    laser_error = relative_error(subset, codes["laser"].map(lambda t: t[: len(subset)]), dictionary)
    sklearn_error = relative_error(subset, codes["sklearn"], dictionary)
    return (
        f"| {config} | {threads} | {laser_ns:,.0f} | {sklearn_ns:,.0f} "
        f"| **{sklearn_ns / laser_ns:.1f}x** | {agreement:.4f} | {laser_error:.4f} "
        f"| {sklearn_error:.4f} |"
    )


def table(configs: list[str], threads: list[int], sklearn_signals: int, repeats: int) -> str:
    setting = machine(torch.device("cpu")).replace(
        f"torch threads {torch.get_num_threads()}", "torch threads as in the table"
    )
    lines = [
        "| config N x M x K x s | torch threads | LASER ns / signal | scikit-learn ns / signal "
        "| LASER speed-up | support agreement | LASER relative error "
        "| scikit-learn relative error |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for config in configs:
        for count in threads:
            lines.append(rows(config, count, sklearn_signals, repeats))
            print(lines[-1], flush=True)
    end_load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    header = [
        "```",
        f"python tools/bench_omp_cpu.py --repeats {repeats} --sklearn-signals {sklearn_signals}",
        "```",
        "",
        setting,
        f"- load average at end: {end_load}",
        f"- median of {repeats} repeats, taking turns; scikit-learn on the first "
        f"{sklearn_signals} signals",
        "",
    ]
    return "\n".join(header + lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=lambda s: s.split(","), default=CONFIGS)
    parser.add_argument("--threads", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    parser.add_argument("--sklearn-signals", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    text = table(args.configs, args.threads, args.sklearn_signals, args.repeats)
    if args.write:
        write_section(DOC, START, END, text)
    else:
        print(text)


if __name__ == "__main__":
    main()
