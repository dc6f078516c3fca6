"""What `laser sweep` adds per run over `laser run` of the same recipe, on the CPU.

    python tools/bench_sweep_overhead.py [--runs 4] [--repeats 2]

Times RUNS separate `laser run` commands of a tiny recipe (seeds 0..RUNS-1) against one
`laser sweep` over the same seeds (local executor, one job at a time), alternating the two
REPEATS times so that changes in the machine's load hit both alike. The overhead per run is
(sweep wall time - sum of the `laser run` wall times) / RUNS; it counts the sweep's own start
(imports, validating every combination), the lock, the status table writes and the scheduling
poll. Because both sides are noisy on a shared machine, the sweep's own share is also shown
directly: (sweep wall time - the wall times of its `laser run` children, from its status
table) / RUNS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.helpers import TINY_RECIPE  # the tests' toy recipe: seconds on a CPU


def laser(*argv: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "laser_core.cli", *argv], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    seeds = ",".join(str(s) for s in range(args.runs))
    overheads, own = [], []
    with tempfile.TemporaryDirectory() as folder:
        recipe = Path(folder) / "tiny.yaml"
        recipe.write_text(TINY_RECIPE)
        for repeat in range(args.repeats):
            runs = [
                laser("run", str(recipe), f"seed={s}", "--run-dir", f"{folder}/r{repeat}-{s}")
                for s in range(args.runs)
            ]
            sweep = laser(
                "sweep", str(recipe), f"seed={seeds}", "--sweep-dir", f"{folder}/s{repeat}"
            )
            overhead = (sweep - sum(runs)) / args.runs
            overheads.append(overhead)
            status = json.loads(Path(f"{folder}/s{repeat}/status.json").read_text())["runs"]
            children = sum(run["seconds"] for run in status.values())
            own.append((sweep - children) / args.runs)
            print(
                f"repeat {repeat}: laser run {sum(runs) / args.runs:.2f} s per run "
                f"(min {min(runs):.2f}, max {max(runs):.2f}); laser sweep {sweep:.2f} s for "
                f"{args.runs} runs = {sweep / args.runs:.2f} s per run; overhead "
                f"{overhead:+.2f} s per run; outside its children {own[-1]:.2f} s per run",
                flush=True,
            )
    print(f"overhead per run against laser run: {', '.join(f'{o:+.2f}' for o in overheads)} s")
    print(
        f"sweep's own time per run (outside its children): {', '.join(f'{o:.2f}' for o in own)} s"
    )


if __name__ == "__main__":
    main()
