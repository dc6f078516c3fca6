"""Validate every mutant of the shipped recipes (tests/recipes/mutants.py) in-process, as
`laser validate` does, and print the table of docs/reliability.md.

    python tools/fuzz_recipes.py            # the table, by mutation class and in total
    python tools/fuzz_recipes.py --list     # also the mutations that were not a clean outcome

Columns: tried; clean error (a LaserError: the recipe is refused with a located message);
accepted, valid or arguable; traceback (any other exception); hang (over 2 s, or 30 s for the
mutants validated with their components built); accepted but wrong (a clearly wrong mutant
that validated).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.recipes.mutants import CLASSES, mutants, run

COLUMNS = (
    "tried",
    "clean error",
    "accepted, valid or arguable",
    "traceback",
    "hang",
    "accepted but wrong",
)


def column(verdict: str, result: str) -> str:
    if result in ("traceback", "hang"):
        return result
    if result == "rejected":
        return "clean error"
    return "accepted but wrong" if verdict == "wrong" else COLUMNS[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="name each unclean outcome")
    args = parser.parse_args()
    counts: dict[str, Counter] = {kind: Counter() for kind in CLASSES}
    unclean: Counter = Counter()
    with tempfile.TemporaryDirectory() as root:
        for number, mutant in enumerate(mutants()):
            folder = Path(root) / str(number)
            folder.mkdir()
            outcome = run(mutant, folder)
            where = column(mutant.verdict, outcome.result)
            counts[mutant.kind].update(["tried", where])
            if where in ("traceback", "hang", "accepted but wrong"):
                mutation = mutant.id.split(":", 1)[1]  # the same mutation of each recipe
                unclean[f"{where}: {mutation} ({mutant.reason or mutant.verdict})"] += 1
    total = sum(counts.values(), Counter())
    print("| class | " + " | ".join(COLUMNS) + " |")
    print("| --- |" + " ---: |" * len(COLUMNS))
    for kind in (*CLASSES, "all"):
        row = total if kind == "all" else counts[kind]
        name = "**all**" if kind == "all" else kind
        print(f"| {name} | " + " | ".join(str(row[c]) for c in COLUMNS) + " |")
    if args.list:
        print()
        for line, recipes in sorted(unclean.items()):
            print(f"- {line}: {recipes} recipes")


if __name__ == "__main__":
    main()
