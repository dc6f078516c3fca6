"""The machine a measurement ran on and its load, for the lines a benchmark writes beside its
numbers: a wall time means little without the cores it had and what else ran on them."""

from __future__ import annotations

import os
import platform
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def cores() -> int:
    """The cores this process may run on (its affinity), which a container may cap below
    ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def load() -> str:
    """The load averages over 1, 5 and 15 minutes: runnable processes competing for the cores."""
    return ", ".join(f"{x:.1f}" for x in os.getloadavg())


def describe() -> str:
    """One line: CPU, cores, Python and the load now."""
    return (
        f"{cpu_name()}, {cores()} cores, Python {platform.python_version()}, "
        f"load average {load()} (1, 5, 15 min)"
    )


@dataclass
class LoadSampler:
    """The 1-minute load average sampled every ``every`` seconds in a background thread, so
    that each measurement can state the mean load while it ran. With a ``log`` file, the
    samples are appended to it and those already there are read first: a measurement that
    outlives one process (a resumed regeneration) keeps the loads seen before."""

    every: float = 5.0
    log: Path | None = None
    samples: list[tuple[float, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> LoadSampler:
        if self.log is not None and self.log.exists():
            lines = self.log.read_text().splitlines()
            self.samples += [(float(at), float(value)) for at, value in map(str.split, lines)]
        threading.Thread(target=self._sample, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()

    def _sample(self) -> None:
        while True:
            sample = (time.time(), os.getloadavg()[0])
            self.samples.append(sample)
            if self.log is not None:
                with self.log.open("a") as log:
                    log.write(f"{sample[0]:.1f} {sample[1]:.2f}\n")
            if self._stop.wait(self.every):
                return

    def mean(self, start: float, end: float) -> float:
        """The mean of the samples taken between ``start`` and ``end`` (``time.time()``), or
        the load now when none was."""
        within = [value for at, value in self.samples if start <= at <= end]
        return sum(within) / len(within) if within else os.getloadavg()[0]
