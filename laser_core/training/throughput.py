"""How fast training goes: images per second between two logged steps and, on CUDA, the
peak memory so far; logged with the losses (keys ``images_per_second``, ``max_memory_gib``)."""

from __future__ import annotations

import time

import torch

TIMING_KEYS = ("images_per_second", "max_memory_gib")
"""Keys that measure the machine rather than the run: they differ between two identical runs."""


class Throughput:
    def __init__(self, images_per_step: int):
        self.images_per_step = images_per_step
        self.last: tuple[int, float] | None = None

    def since_last_log(self, step: int, device: torch.device) -> dict[str, float]:
        """Images per second over the steps since the previous call (none at the first, which
        includes start-up); reading the clock here is no extra host sync, since logging already
        waits for the step's losses."""
        now = time.perf_counter()
        record: dict[str, float] = {}
        if self.last is not None and step > self.last[0]:
            steps, seconds = step - self.last[0], now - self.last[1]
            record["images_per_second"] = steps * self.images_per_step / max(seconds, 1e-9)
        if device.type == "cuda":
            record["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
        self.last = (step, now)
        return record
