"""How long ``laser`` commands take to start, against importing torch, in fresh processes.

    python tools/bench_startup.py [--repeats 7] [--write-docs]

Runs each command REPEATS times, round-robin so that a change in the machine's load hits every
command alike, and prints the median wall time of each and its ratio to the median of
``python -c 'import torch'`` measured in the same run. The targets: ``laser --help`` and
``laser plugins --help`` under 0.5 s, ``laser validate recipes/quickstart.yaml`` within 1.2x
of importing torch (it needs torch: it builds the recipe's model on a probe batch).
``--write-docs`` writes the table into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from doc_section import publish
from machine import describe, load

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "benchmarks.md"
START, END = "<!-- startup table: start -->", "<!-- startup table: end -->"
BASELINE = "python -c 'import torch'"


def laser() -> list[str]:
    """The ``laser`` script a user runs, installed beside this interpreter."""
    script = Path(sys.executable).with_name("laser")
    return [str(script)] if script.exists() else [sys.executable, "-m", "laser_core.cli"]


def commands() -> dict[str, tuple[list[str], str]]:
    """Each command as shown, its argv and its target."""
    return {
        BASELINE: ([sys.executable, "-c", "import torch"], ""),
        "python -c 'import laser_core'": ([sys.executable, "-c", "import laser_core"], ""),
        "laser --help": ([*laser(), "--help"], "< 0.5 s"),
        "laser plugins --help": ([*laser(), "plugins", "--help"], "< 0.5 s"),
        "laser plugins": ([*laser(), "plugins"], ""),
        "laser validate recipes/quickstart.yaml": (
            [*laser(), "validate", "recipes/quickstart.yaml"],
            "<= 1.2x import torch",
        ),
    }


def seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - start


def met(target: str, median: float, ratio: float) -> str:
    if not target:
        return ""
    limit = float(target.split()[1].rstrip("x"))
    return "yes" if (ratio if target.endswith("torch") else median) <= limit else "no"


def table(times: dict[str, list[float]], targets: dict[str, str]) -> str:
    baseline = statistics.median(times[BASELINE])
    rows = [
        "| command | median | fastest | against import torch | target | met |",
        "| --- | ---: | ---: | ---: | --- | --- |",
    ]
    for name, runs in times.items():
        median = statistics.median(runs)
        ratio = median / baseline
        rows.append(
            f"| `{name}` | {median:.2f} s | {min(runs):.2f} s | {ratio:.2f}x | "
            f"{targets[name]} | {met(targets[name], median, ratio)} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--write-docs", action="store_true", help=f"write the table into {DOC}")
    args = parser.parse_args()
    todo = commands()
    before = describe()
    seconds(todo[BASELINE][0])  # warm the file cache once, for every command alike
    times: dict[str, list[float]] = {name: [] for name in todo}
    for _ in range(args.repeats):
        for name, (argv, _target) in todo.items():
            times[name].append(seconds(argv))
    text = "\n".join(
        [
            table(times, {name: target for name, (_, target) in todo.items()}),
            "",
            f"{args.repeats} runs of each, round-robin, on {before}; at the end: {load()}.",
        ]
    )
    publish(DOC, START, END, text, args.write_docs)


if __name__ == "__main__":
    main()
