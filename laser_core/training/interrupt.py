"""Ctrl-C that waits for the end of the optimizer step, so that the checkpoint it triggers
holds one consistent step: weights, optimizer, scheduler and step counter together."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType

import numpy as np
import torch
import torch.distributed as dist


class DeferredInterrupt:
    """While active, the first SIGINT only sets :attr:`requested`; a second one interrupts at
    once (KeyboardInterrupt), for a user who will not wait."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: signal.Handlers | None = None

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print(
            "\ninterrupt: finishing this step, then saving a checkpoint (Ctrl-C again to quit "
            "without saving)",
            file=sys.stderr,
        )


class AgreedStop:
    """Whether to stop after this step, the same answer on every process, without making the
    host wait for the device.

    One process reads its own flag. Several all-reduce their flags each step on the CPU (gloo,
    non-blocking) and read the previous step's sum: a Ctrl-C seen by any process during step k
    stops all of them after step k + 1, and no step waits on a device collective.
    """

    def __init__(self, interrupt: DeferredInterrupt, num_processes: int):
        self.interrupt = interrupt
        self._group = None
        self._distributed = num_processes > 1
        if self._distributed and dist.get_backend() != "gloo":
            self._group = dist.new_group(backend="gloo")  # every process calls this, in step
        self._pending: tuple[dist.Work, np.ndarray] | None = None

    def requested(self) -> bool:
        """Call once after each step, on every process."""
        if not self._distributed:
            return self.interrupt.requested
        stop = self._collect()
        flag = np.array([float(self.interrupt.requested)], dtype=np.float32)
        work = dist.all_reduce(torch.from_numpy(flag), group=self._group, async_op=True)
        self._pending = (work, flag)  # the tensor shares flag's memory: read it from numpy
        return stop

    def close(self) -> None:
        """Finish the last all-reduce, so that no collective is left half done."""
        self._collect()

    def _collect(self) -> bool:
        if self._pending is None:
            return False
        work, flag = self._pending
        self._pending = None
        work.wait()
        return bool(flag[0] > 0)
