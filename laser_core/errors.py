"""Errors meant for people: what was wrong, where, and what to do. The CLI prints them without
a traceback."""

from __future__ import annotations

import difflib
import errno
import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


class LaserError(Exception):
    """A user-facing error; ``str()`` is the whole message."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a recipe, located as precisely as we know."""

    where: str  # "recipes/a.yaml:12" or "override 'train.lr=x'"
    key: str  # dotted key, e.g. "bottleneck.codebook_size"
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.key or '(top level)'}: {self.message}"


class RecipeError(LaserError):
    """Every problem found in a recipe, reported together so one run fixes them all."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("invalid recipe:\n" + "\n".join(f"  {p}" for p in problems))


class PluginError(LaserError):
    """A component cannot be provided: unknown, ambiguous, or from a plugin that failed."""


class ComponentError(LaserError):
    """Raised by a plugin's factory when its config cannot work with what it was given, e.g.
    ``sparsity`` above what the encoder's ``latent_dim`` allows. Say what is wrong and what to
    change; LASER adds the recipe's file:line, the component and its plugin, and ``laser
    validate`` reports it before any training."""


class ContractError(PluginError, AssertionError):
    """A component broke its contract (wrong type, shape or dtype). An AssertionError too, so
    that the conformance kit's checks read as failed assertions in a plugin's tests."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """A ' did you mean ...?' suffix, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


WORLD_ERRNOS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("the disk is full", "free some space or write somewhere else"),
    errno.EDQUOT: ("the disk quota is used up", "free some space or write somewhere else"),
    errno.EFBIG: (
        "a file size limit was reached (ulimit -f, or the largest file the file system allows)",
        "raise the limit or write somewhere else",
    ),
    errno.EACCES: ("no permission", "change the permissions or write somewhere else"),
    errno.EPERM: ("no permission", "change the permissions or write somewhere else"),
    errno.EROFS: ("the file system is read-only", "write somewhere else"),
    errno.EISDIR: ("a directory stands where a file is expected", "give the path of a file"),
    errno.ENOTDIR: ("a file stands where a directory is expected", "give the path of a folder"),
    errno.EIO: ("the disk reported an input/output error", "check the disk"),
    errno.EMFILE: ("too many files are open", "raise the limit (ulimit -n)"),
    errno.ENAMETOOLONG: ("a file name is too long", "choose a shorter path"),
}
"""What an operating-system error number says of the machine, and what a person can do."""

_ERRNO_IN_TEXT = re.compile(r"os error (\d+)|\[Errno (\d+)\]")
_SHORT_WRITE = ("unexpected pos", "file write failed")  # torch.save's zip writer, short of space


@contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Name ``path`` on whatever fails while it is written, so that a full disk is told with
    the file it hit (see :func:`world_problem`); the error itself is raised unchanged."""
    try:
        yield
    except Exception as error:
        if not hasattr(error, "laser_writing"):
            error.laser_writing = Path(path)
        raise


def world_problem(error: BaseException) -> str | None:
    """The message for a failure of the machine rather than of LASER (a full disk, a refused
    permission, a directory where a file belongs), or None when ``error`` is none of those."""
    for cause in _chain(error):
        number = getattr(cause, "errno", None) if isinstance(cause, OSError) else None
        found = _ERRNO_IN_TEXT.search(str(cause))
        if number is None and found:
            number = int(found.group(1) or found.group(2))
        written = _written(error)
        if number in WORLD_ERRNOS:
            what, todo = WORLD_ERRNOS[number]
            filename = getattr(cause, "filename", None)
            where = f" writing {written}" if written else f" at {filename}" if filename else ""
            return f"{what}{where}; {todo} ({cause})"
        if any(text in str(cause) for text in _SHORT_WRITE):
            return (
                f"could not write all of {written or 'a file'}, as when the disk is full or a "
                f"file size limit is reached; free some space or write somewhere else ({cause})"
            )
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def _written(error: BaseException) -> Path | None:
    """The file being written when ``error`` or an error it came from was raised."""
    for tagged in _chain(error):
        if hasattr(tagged, "laser_writing"):
            return tagged.laser_writing
    return None
