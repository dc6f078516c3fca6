"""The ``laser prior`` and ``laser sample`` subcommands, added to the ``laser`` parser."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

AddCommand = Callable[[str, Callable[[argparse.Namespace], None], str], argparse.ArgumentParser]


def add_commands(command: AddCommand) -> None:
    sub = command("prior", _prior, "train a prior over a finished run's codes (its second stage)")
    sub.add_argument("run_dir", type=Path)
    sub.add_argument("recipe", type=Path, help="a prior recipe, e.g. recipes/priors/counts.yaml")
    sub.add_argument("--resume", action="store_true", help="continue from its last checkpoint")

    sub = command("sample", _sample, "decode codes sampled from a run's trained prior to images")
    sub.add_argument("run_dir", type=Path)
    sub.add_argument("-o", "--output", type=Path, required=True, help="the PNG grid to write")
    sub.add_argument("-n", type=int, default=64, help="how many images (default: 64)")
    sub.add_argument("--prior", help="which trained prior (default: the only one)")
    sub.add_argument("--class", dest="label", type=int, help="the class, for conditional priors")
    sub.add_argument("--temperature", type=float, default=1.0, help="default: 1")
    sub.add_argument("--top-k", type=int, help="sample among the k likeliest symbols")
    sub.add_argument("--seed", type=int, default=0)


def _prior(args: argparse.Namespace) -> None:
    from laser_core.priors.train import train_prior

    result = train_prior(args.run_dir, args.recipe, args.resume)
    m = result.metrics
    print(
        f"wrote {result.directory}: held-out {m['bits_per_image']:.2f} bits per image, "
        f"{m['bits_per_pixel']:.4f} bits per pixel ({int(m['val_images'])} images)"
    )


def _sample(args: argparse.Namespace) -> None:
    from laser_core.priors.workflow import sample_run

    sample_run(
        args.run_dir,
        args.output,
        args.n,
        args.prior,
        args.label,
        args.temperature,
        args.top_k,
        args.seed,
    )
    print(f"wrote {args.output}: {args.n} samples")
