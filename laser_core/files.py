"""Files written atomically: the one writer every module uses, so a crash or a full disk
leaves the old file or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from laser_core.errors import writing


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary file in the same folder and rename it into place, so a
    crash leaves either the old file or the new one, never half of one."""
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        os.close(handle)
        try:
            write(Path(temporary))
            os.chmod(temporary, default_mode())
            with open(temporary, "rb") as stream:
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def default_mode(directory: bool = False) -> int:
    """What open() or mkdir() would have given: mkstemp and mkdtemp make private files and
    folders (0600, 0700), but run and export directories are shared with colleagues and tools
    just as what is written directly would be."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda p: p.write_text(text))
