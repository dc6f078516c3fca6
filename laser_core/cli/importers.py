"""``laser import taming|diffusers``: parsing and printing; the work is in the importers."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path


def add_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add ``laser import`` through the CLI's ``command(name, handler, help)``."""
    sub = command("import", _import, "turn a pretrained autoencoder into a run directory")
    sources = sub.add_subparsers(dest="library", metavar="LIBRARY", required=True)
    taming = sources.add_parser(
        "taming", help="a taming-transformers VQModel or GumbelVQ checkpoint"
    )
    taming.add_argument("checkpoint", type=Path, help="Lightning .ckpt")
    taming.add_argument("--config", type=Path, required=True, help="its training YAML")
    diffusers = sources.add_parser("diffusers", help="a diffusers VQModel or AutoencoderKL")
    diffusers.add_argument("folder", type=Path, help="what save_pretrained wrote")
    for source in (taming, diffusers):
        source.add_argument(
            "overrides", nargs="*", help="recipe overrides, e.g. bottleneck.commitment_weight=0.5"
        )
        source.add_argument("--out", type=Path, required=True, help="the run directory to write")
        source.add_argument(
            "--data", help="a dataset block in YAML to record (default: none, give one to eval)"
        )


def _import(args: argparse.Namespace) -> None:
    from laser_core.cli.downstream import parse_dataset
    from laser_core.importers.workflow import import_diffusers, import_taming

    dataset = parse_dataset(args.data)
    if args.library == "taming":
        import_taming(args.checkpoint, args.config, args.out, args.overrides, dataset)
    else:
        import_diffusers(args.folder, args.out, args.overrides, dataset)
    given = "" if dataset else " --dataset '{name: image-folder, path: DIR}'"
    print(f"wrote {args.out}; try: laser eval {args.out}{given}")
