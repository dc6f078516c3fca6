"""How torch's threads should wait for work on a CPU other processes share.

    python tools/bench_threads.py [--steps 100] [--repeats 2] [--write-docs]

Times `laser run recipes/quickstart.yaml train.steps=STEPS` with threads that sleep while they
wait (`OMP_WAIT_POLICY=PASSIVE`, what `laser` sets unless the environment does), with GNU
OpenMP's default (threads spin for a while before they sleep), and with one thread, alternating
REPEATS times, each with the mean load average while it ran. On an idle machine the first two
should take the same time; under load the spinning takes the cores the work needs.
``--write-docs`` writes the table into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from doc_section import publish
from machine import LoadSampler, describe

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
START, END = "<!-- threads table: start -->", "<!-- threads table: end -->"
SETTINGS = {
    "threads sleep while waiting (laser's default)": {"OMP_WAIT_POLICY": "PASSIVE"},
    "threads spin, then sleep (torch's default)": {"OMP_WAIT_POLICY": ""},  # unset for libgomp
    "one thread": {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--write-docs", action="store_true", help=f"write the table into {DOC}")
    args = parser.parse_args()
    laser = Path(sys.executable).with_name("laser")
    before = describe()
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory() as folder, LoadSampler() as sampler:
        for repeat in range(args.repeats):
            for index, (name, env) in enumerate(SETTINGS.items()):
                argv = [str(laser), "run", "recipes/quickstart.yaml", f"train.steps={args.steps}"]
                start = time.time()
                subprocess.run(
                    [*argv, "--run-dir", f"{folder}/{repeat}-{index}"],
                    cwd=REPO,
                    env={**os.environ, **env},
                    check=True,
                    capture_output=True,
                )
                runs[name].append((time.time() - start, sampler.mean(start, time.time())))
    rows = [
        f"| {args.steps} quickstart steps | median | each run (load while it ran) |",
        "| --- | ---: | --- |",
    ]
    for name, measured in runs.items():
        each = ", ".join(f"{seconds:.0f} s ({load:.1f})" for seconds, load in measured)
        median = statistics.median(seconds for seconds, _ in measured)
        rows.append(f"| {name} | {median:.0f} s | {each} |")
    text = "\n".join([*rows, "", f"{args.repeats} runs of each, alternating, on {before}."])
    publish(DOC, START, END, text, args.write_docs)


if __name__ == "__main__":
    main()
