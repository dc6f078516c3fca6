"""Noticing a NaN or infinite loss without reading the loss on the host every step: the first
bad step and its loss are kept on the device, and read where the loop syncs anyway (log,
validation and checkpoint steps, and before every checkpoint)."""

from __future__ import annotations

import torch
from accelerate import Accelerator


class DivergenceWatch:
    """The first step whose loss was not finite, and that loss, on one process."""

    def __init__(self, device: torch.device):
        self.step = torch.zeros((), dtype=torch.long, device=device)  # 0: none yet
        self.loss = torch.zeros((), device=device)

    def observe(self, loss: torch.Tensor, step: int) -> None:
        """Note ``loss`` of step ``step`` (1-based) if it is the first that is not finite:
        device kernels only, nothing waits."""
        loss = loss.detach().float()
        first = ~torch.isfinite(loss) & (self.step == 0)
        self.step = torch.where(first, step, self.step)
        self.loss = torch.where(first, loss, self.loss)

    def first_bad(self, accelerator: Accelerator | None) -> tuple[int, float] | None:
        """(step, loss) of the earliest bad loss of any process (of this one without an
        ``accelerator``), or None; reads the device, so call it only where a step may sync."""
        steps, losses = self.step.reshape(1), self.loss.reshape(1)
        if accelerator is not None:
            steps, losses = accelerator.gather(steps), accelerator.gather(losses)
        found = [(s, v) for s, v in zip(steps.tolist(), losses.tolist(), strict=True) if s > 0]
        return min(found) if found else None
