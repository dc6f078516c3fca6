"""Time the test suite and write the result where the README and docs/testing.md state it.

    python tools/time_suite.py                    # runs `make test` here
    python tools/time_suite.py -- bash .ci/run    # any command that ends in pytest's summary

The command's output passes through; its last pytest summary line gives the count of tests
and the seconds, the load is sampled while it runs, and the sentence "N tests in S s at load L
(`python tools/time_suite.py`, C cores)" is rewritten in every file of STATED. Nothing is
written when the command fails.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

from machine import LoadSampler, cores

REPO = Path(__file__).resolve().parents[1]
STATED = (REPO / "README.md", REPO / "docs" / "testing.md")
SENTENCE = re.compile(
    r"\d+ tests in \d+ s at load [\d.]+ \(`python tools/time_suite\.py`, \d+ cores\)"
)
SUMMARY = re.compile(r"(\d+) passed(?:, (\d+) skipped)?.* in ([\d.]+)s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="*", default=["make", "test"])
    command = parser.parse_args().command
    lines: list[str] = []
    with LoadSampler() as sampler:
        start = time.time()
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
        for line in process.stdout:
            sys.stdout.write(line)
            lines.append(line)
        code = process.wait()
        load = sampler.mean(start, time.time())
    summaries = [match for line in lines if (match := SUMMARY.search(line))]
    if code or not summaries:
        print(f"time_suite: {' '.join(command)} failed (exit {code}); nothing written")
        return 1
    passed, skipped, seconds = summaries[-1].groups()
    tests = int(passed) + int(skipped or 0)
    sentence = (
        f"{tests} tests in {float(seconds):.0f} s at load {load:.1f} "
        f"(`python tools/time_suite.py`, {cores()} cores)"
    )
    for path in STATED:
        text = path.read_text()
        if not SENTENCE.search(text):
            print(f"time_suite: {path} states no suite time to rewrite")
            return 1
        path.write_text(SENTENCE.sub(sentence, text))
    print(f"time_suite: {sentence}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
