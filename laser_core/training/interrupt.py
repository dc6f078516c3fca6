"""Ctrl-C that waits for the end of the optimizer step, so that the checkpoint it triggers
holds one consistent step: weights, optimizer, scheduler and step counter together."""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType


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
