"""What ``laser priors``, ``compress``, ``decompress``, ``finetune-quantized`` and ``rd`` do,
from files to files, as library functions the CLI calls."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from laser_core.coding import DEFAULT_BITS, DEFAULT_MAX_IMAGES
from laser_core.coding.codec import Codec
from laser_core.coding.finetune import finetune_decoder
from laser_core.coding.identity import model_identity
from laser_core.coding.opening import open_codec, open_codec_for
from laser_core.coding.priors import Priors, build_priors
from laser_core.coding.rates import Rates
from laser_core.coding.rd import Row, default_images, folder_images, rate_distortion
from laser_core.data.images import from_pixels, read_codable_pixels, to_pixels, write_png
from laser_core.errors import LaserError
from laser_core.files import atomic_write
from laser_core.rundir.lock import lock_run_dir
from laser_core.rundir.resume import WHOLE_IMAGES, recorded_coding
from laser_core.runs.load import load_run


def count_priors(
    run_dir: str | os.PathLike[str], bits: int = DEFAULT_BITS, max_images: int = DEFAULT_MAX_IMAGES
) -> Priors:
    """(Re)count a run's entropy-coding priors on its training set and store them in the run
    directory: what ``laser priors`` does."""
    run_dir = Path(run_dir)
    run = load_run(run_dir)  # first: the lock must not make a folder where no run is
    with lock_run_dir(run_dir):
        return build_priors(run, model_identity(run_dir), bits, max_images)


@dataclass
class Compressed:
    """A written ``.lsr`` file: how many images and bytes it holds, its rates, and the bytes
    of what the model holds and the file does not count (a codebook, coding tables)."""

    path: Path
    images: int
    size: int
    rates: Rates
    codebook_bytes: int
    held_by_model: str


def compress_files(
    run_dir: str | os.PathLike[str],
    images: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    prior: str | None = None,
    refine: int = 0,
) -> Compressed:
    """Entropy-code image files with a run into one ``.lsr`` file, written atomically: what
    ``laser compress`` does. Counts the run's priors first if it has none; ``prior`` names a
    trained prior of the run (``laser prior``) to code under instead; ``refine`` steps fit
    each image's latents to it (a whole-image codec, refine.py)."""
    codec = open_codec(Path(run_dir), prior, refine)
    tensors = [from_pixels(read_codable_pixels(Path(path), codec.channels)) for path in images]
    data, rates = codec.compress(tensors)
    output = Path(output)
    atomic_write(output, lambda temporary: temporary.write_bytes(data))
    return Compressed(
        output, len(tensors), len(data), rates, codec.codebook_bytes, codec.held_by_model
    )


def decompress_file(
    run_dir: str | os.PathLike[str], file: str | os.PathLike[str], output: str | os.PathLike[str]
) -> list[Path]:
    """Decode a ``.lsr`` file with the run that wrote it into PNGs: ``output`` for one image,
    ``NAME-0.png``, ``NAME-1.png``, ... beside it for several; what ``laser decompress`` does."""
    file, output = Path(file), Path(output)
    if not file.is_file():
        raise LaserError(f"{file} does not exist")
    data = file.read_bytes()
    images = open_codec_for(Path(run_dir), data, str(file)).decompress(data, str(file))
    paths = (
        [output]
        if len(images) == 1
        else [output.with_name(f"{output.stem}-{i}{output.suffix}") for i in range(len(images))]
    )
    for image, path in zip(images, paths, strict=True):
        write_png(to_pixels(image), path)
    return paths


def finetune_quantized(
    run_dir: str | os.PathLike[str], output: str | os.PathLike[str], steps: int = 200
) -> Priors:
    """Fine-tune a run's decoder on its quantized code values into the new run directory
    ``output``, with priors counted like the source's, and return those: what ``laser
    finetune-quantized`` does. A run that codes whole images trained its decoder on its
    rounded codes already, and is refused."""
    if recorded_coding(Path(run_dir)) == WHOLE_IMAGES:
        raise LaserError(
            f"{run_dir} codes whole images under its own entropy model, and its decoder was "
            "trained on its rounded codes: there is no value quantizer to fine-tune for"
        )
    return finetune_decoder(Codec.open(Path(run_dir)), Path(output), steps).priors


def compare_rd(
    run_dirs: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    images: str | os.PathLike[str] | None = None,
    refine: int = 0,
) -> list[Row]:
    """Bits per pixel against PSNR/SSIM of runs (a sweep directory: one codec's curve), JPEG
    and WebP on the image files in ``images`` (default: photo-patches' validation
    photographs): OUTPUT/rd.csv, bd.csv (Bjøntegaard deltas against JPEG and WebP) and rd.png,
    and the means per codec and setting; what ``laser rd`` does. ``refine`` steps add each
    whole-image codec refining its latents (``LABEL refined``) beside it."""
    pictures = default_images() if images is None else folder_images(Path(images))
    paths = [Path(run_dir) for run_dir in run_dirs]
    return rate_distortion(paths, pictures, Path(output), refine)
