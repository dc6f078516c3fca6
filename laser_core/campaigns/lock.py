"""One sweep command per sweep directory. An advisory ``flock`` on ``DIR/.lock``: the kernel
drops it when the holder dies, even by SIGKILL, so a crashed sweep never leaves a stale lock.
Local jobs inherit the locked descriptor, so a sweep killed while its jobs still finish their
step keeps the directory locked until the last of them exits."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from laser_core.errors import LaserError


class SweepLocked(LaserError):
    """Another sweep command is working in this sweep directory."""


class SweepLock:
    def __init__(self, sweep_dir: Path):
        self.path = sweep_dir / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> SweepLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise SweepLocked(
                f"{self.path.parent} is in use by another sweep (process {holder}, or jobs it "
                "left finishing their step); wait for it, or stop it, then rerun"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
