"""Which codec a run directory is: whole images under the bottleneck's own entropy model, or
tiles of the training size under counted or trained priors, as its run.json records."""

from __future__ import annotations

from pathlib import Path

from laser_core.coding import container
from laser_core.coding.codec import Codec
from laser_core.coding.refine import REFINABLE, checked_steps
from laser_core.coding.whole_images import WholeImageCodec
from laser_core.errors import LaserError
from laser_core.rundir.resume import WHOLE_IMAGES, recorded_coding


def open_codec(run_dir: Path, prior: str | None = None, refine: int = 0) -> Codec | WholeImageCodec:
    """The codec of a finished run, to compress with; ``prior`` names a trained prior of a
    tiled run to code under; ``refine`` steps fit a whole-image codec's latents to each image."""
    refine = checked_steps(refine)
    if recorded_coding(run_dir) != WHOLE_IMAGES:
        if refine:
            raise LaserError(
                f"{run_dir} codes tiles under counted priors; --refine fits {REFINABLE}"
            )
        codec = Codec.open(run_dir)
        return codec if prior is None else codec.with_prior(prior)
    if prior is not None:
        raise LaserError(
            f"{run_dir} codes whole images under its own entropy model; a trained prior "
            "(--prior) codes the tiles of runs with counted priors only"
        )
    codec = WholeImageCodec.open(run_dir)
    return codec.refined(refine) if refine else codec


def open_codec_for(run_dir: Path, data: bytes, source: str) -> Codec | WholeImageCodec:
    """The codec of a finished run, to decompress the ``.lsr`` bytes ``data`` with."""
    if recorded_coding(run_dir) != WHOLE_IMAGES:
        return Codec.open_for(run_dir, data, source)
    container.unpack(data, source)  # a foreign or damaged file is refused before the model loads
    return WholeImageCodec.open(run_dir)
