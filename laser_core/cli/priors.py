"""The ``laser prior`` and ``laser sample`` subcommands, added to the ``laser`` parser."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from laser_core.errors import LaserError

AddCommand = Callable[[str, Callable[[argparse.Namespace], None], str], argparse.ArgumentParser]


def add_commands(command: AddCommand) -> None:
    sub = command("prior", _prior, "train a prior over a finished run's codes (its second stage)")
    sub.add_argument("run_dir", type=Path)
    sub.add_argument("recipe", type=Path, help="a prior recipe, e.g. recipes/priors/counts.yaml")
    sub.add_argument("--resume", action="store_true", help="continue from its last checkpoint")

    sub = command("sample", _sample, "decode codes sampled from a run's trained prior to images")
    sub.add_argument("run_dir", type=Path)
    sub.add_argument("-o", "--output", type=Path, help="the PNG grid to write")
    sub.add_argument("-n", type=int, default=64, help="how many images (default: 64)")
    sub.add_argument("--prior", help="which trained prior (default: the only one)")
    sub.add_argument("--class", dest="label", type=int, help="the class, for conditional priors")
    sub.add_argument("--temperature", type=float, default=1.0, help="default: 1")
    sub.add_argument("--top-k", type=int, help="sample among the k likeliest symbols")
    sub.add_argument("--seed", type=int, default=0)
    sub.add_argument(
        "--evaluate",
        action="store_true",
        help="score samples (one per validation image, with its class) against the validation "
        "images: FID/KID next to the reconstructions', accuracy per requested class; added "
        "to the prior's metrics.json",
    )
    sub.add_argument(
        "--features",
        default="classifier",
        help="--evaluate's features: classifier (trained by LASER on the run's images, no "
        "download; not comparable to published FIDs), inception (its weights in the torch "
        "cache) or a feature file (default: classifier)",
    )


def _prior(args: argparse.Namespace) -> None:
    from laser_core.priors.train import train_prior

    result = train_prior(args.run_dir, args.recipe, args.resume)
    m = result.metrics
    print(
        f"wrote {result.directory}: held-out {m['bits_per_image']:.2f} bits per image, "
        f"{m['bits_per_pixel']:.4f} bits per pixel ({int(m['val_images'])} images)"
    )


def _sample(args: argparse.Namespace) -> None:
    if args.output is None and not args.evaluate:
        raise LaserError("laser sample needs -o GRID.png, --evaluate or both")
    if args.evaluate:
        _evaluate(args)
    if args.output is not None:
        _grid(args)


def _evaluate(args: argparse.Namespace) -> None:
    from laser_core.priors.quality import evaluate_samples

    if args.label is not None:
        raise LaserError(
            "--evaluate samples every class of the validation split; drop --class, or draw "
            "that class's grid with a separate `laser sample -o`"
        )
    metrics = evaluate_samples(
        args.run_dir, args.prior, args.features, args.temperature, args.top_k, args.seed
    )
    for key, value in metrics.items():
        print(f"{key}: {value:.4g}")


def _grid(args: argparse.Namespace) -> None:
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
