"""Rate-distortion: LASER runs next to JPEG and WebP on one image set.

``laser rd RUN_DIR... [--images DIR] -o OUT`` writes ``OUT/rd.csv``, one row per codec,
setting and image (a run's trained priors each add a codec, ``RUN +NAME``, beside the run's
counted priors), ``OUT/bd.csv``, each LASER codec's Bjøntegaard deltas against JPEG and WebP
(bjontegaard.py), and ``OUT/rd.png``, distortion averaged over images against bpp. A run
directory is one point; a sweep directory (``laser sweep``, e.g. over the rate weight) is one
codec whose finished runs draw its curve. Every image is first center-cropped to a multiple of
every run's tile side (the image side it trained on), so that all codecs see the same pixels
and none codes padding. bpp counts whole files: JPEG and WebP files, ``.lsr`` containers with
their header and checksum.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from laser_core.assembly.build import build_component, list_components
from laser_core.coding.bjontegaard import CUBIC_POINTS, Curve, bjontegaard
from laser_core.coding.codec import Codec
from laser_core.coding.opening import open_codec
from laser_core.coding.refine import REFINABLE, checked_steps
from laser_core.coding.trained_priors import trained_prior_names
from laser_core.coding.whole_images import WholeImageCodec
from laser_core.data.images import GRAYSCALE_MODES, from_pixels, read_pixels, to_pixels
from laser_core.data.photos import sample_photo
from laser_core.errors import LaserError
from laser_core.files import atomic_write, atomic_write_text
from laser_core.rundir.layout import RunDir

log = logging.getLogger(__name__)

QUALITIES = (5, 10, 25, 50, 75, 90)
"""Pillow quality settings tried for JPEG and WebP."""
METRICS = ("psnr", "ssim", "lpips")
"""Distortion metrics, each used when a metric plugin of that name builds."""
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
MIN_SIDE, MAX_SIDE = 16, 16383
"""Image sides rd measures: below 16 pixels a file is mostly header and the metrics' windows
do not fit; 16383 is the largest side WebP can code."""
ANCHORS = ("jpeg", "webp")
"""The codecs every LASER codec's Bjøntegaard deltas are measured against."""
BD_COLUMNS = ("codec", "anchor", "points", "method", "bd_rate_percent", "bd_psnr_db", "note")

Row = dict[str, str | float | int]
DEFAULT_IMAGES = ("chelsea", "china")
"""photo-patches' default validation photographs, so the default curve is out-of-sample."""


def default_images() -> list[tuple[str, np.ndarray]]:
    """The photographs photo-patches holds out for validation by default."""
    return [(name, sample_photo(name)) for name in DEFAULT_IMAGES]


def folder_images(folder: Path) -> list[tuple[str, np.ndarray]]:
    """Every image file directly in ``folder``, as RGB, by file name; files of other suffixes
    are left out, and an image rd cannot measure is refused naming it."""
    if not folder.is_dir():
        raise LaserError(f"--images {folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise LaserError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return [(path.name, _rgb_pixels(path)) for path in files]


def _rgb_pixels(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as image:
            mode = image.mode
    except (OSError, UnidentifiedImageError) as error:
        raise LaserError(f"cannot read image {path}: {error}") from None
    if mode in GRAYSCALE_MODES:
        raise LaserError(
            f"{path} is a grayscale image (mode {mode}); rd compares codecs on RGB images: "
            "convert it to RGB to measure it as one, or move it out of the folder"
        )
    pixels = read_pixels(path, 3)
    height, width = pixels.shape[:2]
    if not MIN_SIDE <= min(height, width) <= max(height, width) <= MAX_SIDE:
        raise LaserError(
            f"{path} is {height}x{width} pixels; rd measures images whose sides are "
            f"{MIN_SIDE} to {MAX_SIDE} pixels (WebP's largest): crop or resize it, or move it "
            "out of the folder"
        )
    return pixels


def center_crop(name: str, pixels: np.ndarray, multiple: int) -> np.ndarray:
    """The largest centered crop of pixels (H, W, C) whose sides are multiples of ``multiple``."""
    height, width = (side - side % multiple for side in pixels.shape[:2])
    if not height or not width:
        raise LaserError(
            f"image {name} is {pixels.shape[0]}x{pixels.shape[1]} pixels, smaller than the "
            f"{multiple}-pixel tiles of the runs compared; give larger images"
        )
    top, left = (pixels.shape[0] - height) // 2, (pixels.shape[1] - width) // 2
    return pixels[top : top + height, left : left + width]


class Distortion:
    """The metric plugins among METRICS that build here, on pairs of uint8 images (H, W, C)."""

    def __init__(self) -> None:
        available = {component.name for component in list_components("metrics")}
        self.metrics, self.skipped = {}, {}
        for name in METRICS:
            if name not in available:
                self.skipped[name] = "no metric plugin of that name is installed"
                continue
            try:
                self.metrics[name] = build_component("metrics", {"name": name})
            except (LaserError, OSError) as error:  # e.g. weights that would need a download
                self.skipped[name] = str(error)

    def __call__(self, original: np.ndarray, decoded: np.ndarray) -> dict[str, float]:
        images, reconstructions = from_pixels(original)[None], from_pixels(decoded)[None]
        return {
            name: float(metric.per_example(images, reconstructions, None)[0])
            for name, metric in self.metrics.items()
        }


def pillow_rows(
    images: list[tuple[str, np.ndarray]], image_format: str, distortion: Distortion
) -> list[Row]:
    """JPEG or WebP at every quality of QUALITIES, through Pillow."""
    rows = []
    for quality in QUALITIES:
        for name, pixels in images:
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format=image_format, quality=quality)
            with Image.open(io.BytesIO(buffer.getvalue())) as image:
                decoded = np.asarray(image.convert("RGB"))
            bpp = 8 * buffer.tell() / (pixels.shape[0] * pixels.shape[1])
            rows.append(
                _row(image_format.lower(), f"q={quality}", name, pixels, bpp, decoded, distortion)
            )
    return rows


def laser_rows(
    label: str,
    setting: str | None,
    codec: Codec | WholeImageCodec,
    images: list[tuple[str, np.ndarray]],
    distortion: Distortion,
) -> list[Row]:
    """One run's rows: each image compressed alone into a ``.lsr`` container. ``setting``
    names the run within its codec's curve (default: the codec's own, e.g. its bottleneck
    and bits)."""
    setting = codec.setting if setting is None else setting
    rows = []
    for name, pixels in images:
        reconstruction, rates = codec.measure(from_pixels(pixels))
        decoded = to_pixels(reconstruction)
        row = _row(label, setting, name, pixels, rates.bpp()["bpp"], decoded, distortion)
        row.update(rates.bpp(), codebook_bytes=codec.codebook_bytes)
        rows.append(row)
    return rows


def _row(
    codec: str,
    setting: str,
    image: str,
    pixels: np.ndarray,
    bpp: float,
    decoded: np.ndarray,
    distortion: Distortion,
) -> Row:
    height, width = pixels.shape[:2]
    return {
        "codec": codec,
        "setting": setting,
        "image": image,
        "height": height,
        "width": width,
        "bpp": bpp,
        **distortion(pixels, decoded),
    }


Point = tuple[str | None, Codec | WholeImageCodec]
"""One run of a LASER codec's curve: its setting (None: named by its bottleneck) and codec."""


def rate_distortion(
    paths: list[Path], images: list[tuple[str, np.ndarray]], out: Path, refine: int = 0
) -> list[Row]:
    """Rows for every run (or sweep) and for JPEG and WebP; writes OUT/rd.csv, OUT/bd.csv and
    OUT/rd.png and returns the means over images, one row per codec and setting. ``refine``
    steps add each whole-image codec refining its latents, ``LABEL refined``."""
    codecs = open_codecs(paths, refine)
    for label, points in codecs.items():
        for _, codec in points:
            if codec.channels != 3:
                raise LaserError(
                    f"run {codec.run.run_dir} ({label}) codes {codec.channels}-channel images; "
                    "rd compares RGB"
                )
    multiple = math.lcm(1, *(codec.tile for points in codecs.values() for _, codec in points))
    images = [(name, center_crop(name, pixels, multiple)) for name, pixels in images]
    distortion = Distortion()
    for name, reason in distortion.skipped.items():
        log.warning("rd: %s skipped: %s", name, reason)
    rows = [
        row
        for label, points in codecs.items()
        for setting, codec in points
        for row in laser_rows(label, setting, codec, images, distortion)
    ]
    rows += pillow_rows(images, "JPEG", distortion) + pillow_rows(images, "WebP", distortion)
    _write_csv(rows, out / "rd.csv")
    means = mean_rows(rows)
    _write_csv(bd_rows(means), out / "bd.csv", BD_COLUMNS)
    plot(means, list(distortion.metrics), out / "rd.png")
    return means


def open_codecs(paths: list[Path], refine: int = 0) -> dict[str, list[Point]]:
    """Each LASER codec's runs by label: a run directory is a codec of one point, a sweep
    directory one whose finished runs are its points (runs still training or failed are left
    out with a warning); a run's trained priors each add a codec, ``LABEL +NAME``, and
    ``refine`` steps a whole-image codec whose bottleneck can refine, ``LABEL refined``."""
    checked_steps(refine)
    codecs: dict[str, list[Point]] = {}
    for label, path in zip(labels(paths), paths, strict=True):
        runs = [(None, path)] if not is_sweep(path) else sweep_runs(path)
        if not runs:
            raise LaserError(f"sweep {path} has no finished runs yet; rd codes finished runs")
        for setting, run_dir in runs:
            codec = open_codec(run_dir)
            codecs.setdefault(label, []).append((setting, codec))
            for name in trained_prior_names(run_dir):  # beside the counts: the learned rates
                codecs.setdefault(f"{label} +{name}", []).append((setting, codec.with_prior(name)))
            if not refine:
                continue
            if isinstance(codec, WholeImageCodec) and codec.bottleneck.refinable:
                codecs.setdefault(f"{label} refined", []).append((setting, codec.refined(refine)))
            else:
                log.warning("rd: %s is not refined: --refine fits %s", run_dir, REFINABLE)
    return codecs


def is_sweep(path: Path) -> bool:
    """Whether ``path`` is a ``laser sweep`` directory: its status table and its runs."""
    return (path / "status.json").is_file() and not RunDir(path).recipe_yaml.is_file()


def sweep_runs(sweep_dir: Path) -> list[tuple[str, Path]]:
    """The finished runs of a sweep, in sweep order, as (run name, run directory)."""
    names = json.loads((sweep_dir / "status.json").read_text())["runs"]
    finished = []
    for name in names:
        run_dir = sweep_dir / "runs" / name
        if RunDir(run_dir).model_safetensors.is_file():
            finished.append((name, run_dir))
        else:
            log.warning("rd: %s left out: it has not finished training", run_dir)
    return finished


def bd_rows(means: list[Row]) -> list[Row]:
    """Each LASER codec's BD-rate (percent) and BD-PSNR (dB) against each of ANCHORS, from
    the curves of PSNR averaged over images; where a delta is not defined, ``note`` says why
    (a codec of one run is a point, not a curve). Empty without a PSNR metric."""
    if not means or "psnr" not in means[0]:
        return []

    def curve(codec: str) -> Curve:
        points = sorted((float(r["bpp"]), float(r["psnr"])) for r in means if r["codec"] == codec)
        return Curve([bpp for bpp, _ in points], [psnr for _, psnr in points])

    rows = []
    for codec in dict.fromkeys(str(r["codec"]) for r in means if r["codec"] not in ANCHORS):
        test = curve(codec)
        for anchor in ANCHORS:
            row: Row = dict.fromkeys(BD_COLUMNS, "")
            row.update(codec=codec, anchor=anchor, points=len(test.rates))
            if len(test.rates) < 2:
                row["note"] = (
                    "one run is a point, not a curve: give rd a sweep directory of at least 2 "
                    f"finished runs ({CUBIC_POINTS} for the cubic fit)"
                )
            else:
                try:
                    delta = bjontegaard(curve(anchor), test)
                except LaserError as error:
                    row["note"] = str(error)
                else:
                    row.update(
                        method=delta.method, bd_rate_percent=delta.bd_rate, bd_psnr_db=delta.bd_psnr
                    )
            rows.append(row)
    return rows


def labels(run_dirs: list[Path]) -> list[str]:
    """Each run's folder name, with its parent's where two names coincide."""
    names = [run_dir.name for run_dir in run_dirs]
    return [
        f"{run_dir.parent.name}/{name}" if names.count(name) > 1 else name
        for run_dir, name in zip(run_dirs, names, strict=True)
    ]


def mean_rows(rows: list[Row]) -> list[Row]:
    """Numbers averaged over images, one row per (codec, setting), in first-seen order."""
    groups: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        groups.setdefault((str(row["codec"]), str(row["setting"])), []).append(row)
    means = []
    for (codec, setting), members in groups.items():
        numbers = [k for k, v in members[0].items() if isinstance(v, float)]
        mean = {k: sum(float(m[k]) for m in members) / len(members) for k in numbers}
        means.append({"codec": codec, "setting": setting, "images": len(members), **mean})
    return means


def read_rows(path: Path) -> list[Row]:
    """An rd.csv as ``laser rd`` wrote it, numbers as floats."""
    with path.open(newline="") as file:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(file)]


def _number(text: str) -> str | float:
    try:
        return float(text)
    except ValueError:
        return text


def _write_csv(rows: list[Row], path: Path, columns: tuple[str, ...] | None = None) -> None:
    columns = columns or list(dict.fromkeys(key for row in rows for key in row))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


def plot(means: list[Row], metrics: list[str], path: Path) -> None:
    """One panel per metric against bpp: a line per Pillow codec, a labelled point per run."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    codecs = list(dict.fromkeys(str(row["codec"]) for row in means))
    for axis, metric in zip(axes[0], metrics, strict=True):
        for codec in codecs:
            points = sorted(
                (float(r["bpp"]), float(r[metric])) for r in means if r["codec"] == codec
            )
            bpp, value = zip(*points, strict=True)
            axis.plot(bpp, value, marker="o", linestyle="-" if len(points) > 1 else "", label=codec)
        axis.set_xlabel("bits per pixel")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    figure.tight_layout()
    atomic_write(path, lambda temporary: figure.savefig(temporary, format="png"))
    plt.close(figure)
