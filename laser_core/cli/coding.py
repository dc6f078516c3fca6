"""The ``laser priors``, ``compress``, ``decompress`` and ``rd`` subcommands, added to the
``laser`` parser by ``cli.py``; kept here so that cli.py stays a short index of commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from laser_core.coding import DEFAULT_BITS, DEFAULT_MAX_IMAGES

AddCommand = Callable[[str, Callable[[argparse.Namespace], None], str], argparse.ArgumentParser]


def add_commands(command: AddCommand) -> None:
    """Add the compression subcommands through cli.py's ``command(name, handler, help)``."""
    sub = command("priors", _priors, "count a run's entropy-coding priors on its training set")
    sub.add_argument("run_dir", type=Path)
    sub.add_argument(
        "--bits", type=int, default=DEFAULT_BITS, help="bits per quantized code value (2-16)"
    )
    sub.add_argument("--max-images", type=int, default=DEFAULT_MAX_IMAGES, metavar="N")

    sub = command("compress", _compress, "entropy-code images with a trained run into a .lsr file")
    sub.add_argument("run_dir", type=Path)
    sub.add_argument("images", nargs="+", type=Path)
    sub.add_argument("-o", "--output", type=Path, required=True, help="the .lsr file to write")
    sub.add_argument(
        "--prior", help="code under this trained prior of the run (laser prior), not the counts"
    )
    sub.add_argument(
        "--refine",
        type=int,
        default=0,
        metavar="STEPS",
        help="fit each image's latents to the run's rate-distortion objective for STEPS steps "
        "(a whole-image codec; slower encoding, smaller or better files)",
    )

    sub = command("decompress", _decompress, "decode a .lsr file with the run that wrote it")
    sub.add_argument("run_dir", type=Path)
    sub.add_argument("file", type=Path, help="a .lsr file")
    sub.add_argument(
        "-o", "--output", type=Path, required=True, help="PNG; several images: NAME-0.png, ..."
    )

    sub = command(
        "finetune-quantized",
        _finetune_quantized,
        "fine-tune a run's decoder on its quantized code values, into a new run directory",
    )
    sub.add_argument("run_dir", type=Path, help="a run whose priors fix the quantizer")
    sub.add_argument("-o", "--output", type=Path, required=True, help="the new run directory")
    sub.add_argument("--steps", type=int, default=200, help="optimizer steps (default: 200)")

    sub = command("rd", _rd, "rate-distortion of runs, JPEG and WebP on an image set")
    sub.add_argument(
        "run_dirs", nargs="*", type=Path, help="run directories (a point each), sweeps (a curve)"
    )
    sub.add_argument(
        "--images", type=Path, help="folder of images (default: the photo-patches val photos)"
    )
    sub.add_argument(
        "-o", "--output", type=Path, required=True, help="folder for rd.csv, bd.csv, rd.png"
    )
    sub.add_argument(
        "--refine",
        type=int,
        default=0,
        metavar="STEPS",
        help="add each whole-image codec refined for STEPS steps (compress --refine) as a codec",
    )


def _priors(args: argparse.Namespace) -> None:
    from laser_core.coding.files import count_priors
    from laser_core.rundir.layout import RunDir

    priors = count_priors(args.run_dir, args.bits, args.max_images)
    values = f", values quantized to {priors.quantizer.bits} bits" if priors.quantizer else ""
    print(
        f"wrote {RunDir(args.run_dir).priors_safetensors}: {priors.depth} depth slot(s) counted on "
        f"{priors.images} training images{values}"
    )


def _compress(args: argparse.Namespace) -> None:
    from laser_core.coding.files import compress_files

    written = compress_files(args.run_dir, args.images, args.output, args.prior, args.refine)
    bpp = written.rates.bpp()
    print(
        f"wrote {args.output}: {written.images} image(s), {written.size} bytes, "
        f"{bpp['bpp']:.4f} bpp (cross-entropy {bpp['bpp_cross_entropy']:.4f}, nominal "
        f"{bpp['bpp_nominal']:.4f}); {written.held_by_model} {written.codebook_bytes} bytes, held "
        "by the model and not counted"
    )


def _decompress(args: argparse.Namespace) -> None:
    from laser_core.coding.files import decompress_file

    paths = decompress_file(args.run_dir, args.file, args.output)
    print(f"wrote {', '.join(map(str, paths))}")


def _finetune_quantized(args: argparse.Namespace) -> None:
    from laser_core.coding.files import finetune_quantized

    bits = finetune_quantized(args.run_dir, args.output, args.steps).quantizer.bits
    print(f"wrote {args.output}: decoder fine-tuned for {args.steps} steps on {bits}-bit values")


def _rd(args: argparse.Namespace) -> None:
    from laser_core.coding.files import compare_rd
    from laser_core.coding.rd import METRICS, bd_rows

    means = compare_rd(args.run_dirs, args.output, args.images, args.refine)
    metrics = [k for k in METRICS if k in means[0]]
    print(f"{'codec':<24} {'setting':<10} {'bpp':>8} " + " ".join(f"{m:>8}" for m in metrics))
    for row in means:
        numbers = " ".join(f"{row[m]:>8.4f}" for m in metrics)
        print(f"{row['codec']:<24} {row['setting']:<10} {row['bpp']:>8.4f} {numbers}")
    deltas = bd_rows(means)
    if deltas:
        print("\nBjøntegaard deltas (PSNR) against JPEG and WebP:")
    for row in deltas:
        against = f"{row['codec']} vs {row['anchor']}"
        if row["note"]:
            print(f"{against:<32} {row['note']}")
        else:
            print(
                f"{against:<32} BD-rate {row['bd_rate_percent']:+8.1f}%  BD-PSNR "
                f"{row['bd_psnr_db']:+6.2f} dB  ({row['points']} points, {row['method']})"
            )
    print(f"wrote {args.output / 'rd.csv'}, {args.output / 'bd.csv'} and {args.output / 'rd.png'}")
