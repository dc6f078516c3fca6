"""Replace the generated part of a doc page: the text between its start and end markers."""

from __future__ import annotations

import argparse
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


def training_arguments(
    description: str, doc: Path, steps: int, work: Path, remeasure: bool = False
) -> argparse.Namespace:
    """``--work``, ``--out`` and ``--steps`` of a tool that trains the runs a section of ``doc``
    measures; other steps than the documented ``steps`` are a quick check, which must not
    overwrite the section. With ``remeasure``, also ``--remeasure``: measure the finished
    runs of ``--work`` again without training (after a change to the measuring, not to the
    models)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--work", type=Path, default=work, help="folder for the runs")
    parser.add_argument("--out", type=Path, default=doc)
    parser.add_argument("--steps", type=int, default=steps, help="training steps per run")
    if remeasure:
        parser.add_argument(
            "--remeasure",
            action="store_true",
            help="measure the finished runs in --work again, training nothing",
        )
    args = parser.parse_args()
    if args.steps != steps and args.out.resolve() == doc.resolve():
        parser.error(f"the documented runs train {steps} steps: give --out somewhere else")
    return args
