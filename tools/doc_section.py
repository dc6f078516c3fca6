"""Replace the generated part of a doc page: the text between its start and end markers."""

from __future__ import annotations

from pathlib import Path


def write_section(doc: Path, start: str, end: str, text: str, out: Path | None = None) -> None:
    """``doc`` with the text between ``start`` and ``end`` replaced by ``text``, written to
    ``out`` (``doc`` itself by default)."""
    head, rest = doc.read_text().split(start, 1)
    _, tail = rest.split(end, 1)
    (out or doc).write_text(f"{head}{start}\n{text}\n{end}{tail}")


def publish(doc: Path, start: str, end: str, text: str, write: bool) -> None:
    """Print a benchmark's ``text``; with ``write`` (its ``--write-docs``), also put it in
    ``doc`` between ``start`` and ``end``."""
    print(text)
    if write:
        write_section(doc, start, end, text)
        print(f"wrote {doc}")
