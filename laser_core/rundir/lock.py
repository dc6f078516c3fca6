"""One process works in a directory at a time: a sweep in its sweep directory, a command that
writes a run (training, a resume, a task, a fine-tune, an import) in its run directory.

An advisory ``flock`` on ``DIR/.lock``: the kernel drops it when its holder dies, even by
SIGKILL, so a lock left by a killed process is taken by the next one as if it were free; the
file names the holder (PID on HOST, and its command) for whoever finds it taken. A process
started with the locked descriptor (a sweep's local jobs) holds the lock too, until the last of
them exits. Two opens of the file conflict even within one process: a command takes the lock
once, where it starts.
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from types import TracebackType

from laser_core.errors import LaserError

LOCK_FILE = ".lock"


class DirectoryLocked(LaserError):
    """Another process is working in this directory."""


class DirectoryLock:
    """``with DirectoryLock(folder, "another sweep"):`` creates ``folder`` if needed and holds
    it, or raises DirectoryLocked naming the holder; ``user`` says who else may hold it."""

    def __init__(self, directory: str | os.PathLike, user: str = "another LASER command"):
        self.directory = Path(directory)
        self.user = user
        self.fd: int | None = None

    def __enter__(self) -> DirectoryLock:
        if self.directory.exists() and not self.directory.is_dir():
            raise LaserError(f"{self.directory} is a file, not a directory; choose another path")
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / LOCK_FILE
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 512).decode(errors="replace").strip() or "a process"
            os.close(fd)
            raise DirectoryLocked(
                f"{self.directory} is in use by {self.user}: {holder}; wait for it to finish, "
                "or stop it, then rerun"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{holder_line()}\n".encode())
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


def holder_line() -> str:
    """Who holds a lock, as its message shows it: ``process 123 on host (laser run r.yaml)``."""
    program = Path(sys.argv[0]).name if sys.argv else "python"
    command = " ".join(["laser" if program == "__main__.py" else program, *sys.argv[1:]])
    return f"process {os.getpid()} on {socket.gethostname()} ({command[:200]})"


def lock_run_dir(run_dir: str | os.PathLike) -> AbstractContextManager:
    """The lock of a run directory that a command writes. In a multi-process launch only the
    main process (RANK 0) takes it; the others work under it."""
    if os.environ.get("RANK", "0") != "0":
        return nullcontext()
    return DirectoryLock(run_dir)
