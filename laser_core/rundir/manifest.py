"""``manifest.json``: the sha256 sum and size of each file a folder is trusted for, written
last and atomically, after the files it covers. A file that does not match is refused by
name, so flipped or truncated bytes are never loaded as weights, optimizer state or a recipe.

A run directory's manifest covers recipe.yaml, plugins.json, metrics.json and
model.safetensors; a checkpoint's covers every file in it. The manifest carries a sum of its
own entries, so damage to the manifest itself is reported as such.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from laser_core.errors import LaserError
from laser_core.files import atomic_write_text
from laser_core.rundir.layout import RunDir, sha256


class DamagedFile(LaserError):
    """A file does not match the manifest, is missing from disk, or the manifest is damaged."""


def exists(folder: Path) -> bool:
    """False for folders written before LASER kept manifests: their files are unverified."""
    return (folder / RunDir.MANIFEST).is_file()


def listed(folder: Path) -> dict[str, dict[str, Any]]:
    """The manifest's entries, {relative path: {sha256, bytes}}; {} without a manifest."""
    path = folder / RunDir.MANIFEST
    if not path.is_file():
        return {}
    try:
        document = json.loads(path.read_bytes())
        files, recorded = document["files"], document["sha256"]
        intact = isinstance(files, dict) and recorded == _entries_sum(files)
    except (ValueError, KeyError, TypeError):
        intact = False
    if not intact:
        raise DamagedFile(
            f"{path} is damaged (it does not match its own sum); restore it, or delete it to "
            "use the folder unverified"
        )
    return files


def seal(folder: Path, names: Iterable[str]) -> None:
    """Record the sums of ``names`` (paths relative to ``folder``), keeping the other entries."""
    files = listed(folder)
    for name in names:
        files[name] = describe(folder / name)
    _write(folder, files)


def seal_all(folder: Path) -> None:
    """Record every file under ``folder``: for a checkpoint, just written in full."""
    files = {
        p.relative_to(folder).as_posix(): describe(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != RunDir.MANIFEST
    }
    _write(folder, files)


def reseal(folder: Path, names: Iterable[str]) -> None:
    """Refresh the sums of rewritten files where a manifest exists; a folder without one
    (an older run) stays unverified rather than gaining a manifest that omits its weights."""
    if exists(folder):
        seal(folder, names)


def unseal(folder: Path, names: Iterable[str]) -> None:
    """Drop ``names`` from the manifest before they are replaced or removed."""
    files, dropped = listed(folder), set(names)
    if dropped & files.keys():
        _write(folder, {k: v for k, v in files.items() if k not in dropped})


def verify(folder: Path, names: Iterable[str] | None = None) -> bool:
    """Check ``names`` (default: every file listed) against the manifest. False when the
    folder has no manifest (unverified); raises DamagedFile naming the first file that fails.
    A name the manifest does not list is not checked: callers decide what it must list."""
    if not exists(folder):
        return False
    files = listed(folder)
    for name in files if names is None else [n for n in names if n in files]:
        _check(folder / name, files[name], folder / RunDir.MANIFEST)
    return True


def describe(path: Path) -> dict[str, Any]:
    return {"sha256": sha256(path), "bytes": path.stat().st_size}


def _check(path: Path, expected: dict[str, Any], manifest: Path) -> None:
    if not path.is_file():
        raise DamagedFile(f"{path} is missing; {manifest} lists it")
    size = path.stat().st_size
    if size != expected["bytes"]:
        raise DamagedFile(
            f"{path} is damaged: {size} bytes where {manifest} records {expected['bytes']}"
            + (" (truncated)" if size < expected["bytes"] else "")
        )
    if sha256(path) != expected["sha256"]:
        raise DamagedFile(f"{path} is damaged: its sha256 differs from the one in {manifest}")


def _entries_sum(files: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()


def _write(folder: Path, files: dict[str, dict[str, Any]]) -> None:
    document = {"files": files, "sha256": _entries_sum(files)}
    atomic_write_text(
        folder / RunDir.MANIFEST, json.dumps(document, indent=2, sort_keys=True) + "\n"
    )
