"""Rate-distortion: LASER runs next to JPEG and WebP on one image set.

``laser rd RUN_DIR... [--images DIR] -o OUT`` writes ``OUT/rd.csv``, one row per codec,
setting and image (a run's trained priors each add a codec, ``RUN +NAME``, beside the run's
counted priors), and ``OUT/rd.png``, distortion averaged over images against bpp. Every
image is first center-cropped to a multiple of every run's tile side (the image side it
trained on), so that all codecs see the same pixels and none codes padding. bpp counts whole
files: JPEG and WebP files, ``.lsr`` containers with their header and checksum.
"""

from __future__ import annotations

import csv
import io
import logging
import math
from pathlib import Path

import numpy as np
from PIL import Image

from laser_core.assembly.build import build_component, list_components
from laser_core.coding.codec import Codec
from laser_core.coding.images import from_pixels, read_pixels, to_pixels
from laser_core.coding.opening import open_codec
from laser_core.coding.trained_priors import trained_prior_names
from laser_core.coding.whole_images import WholeImageCodec
from laser_core.data.photos import sample_photo
from laser_core.errors import LaserError
from laser_core.rundir.layout import atomic_write, atomic_write_text

log = logging.getLogger(__name__)

QUALITIES = (10, 25, 50, 75, 90)
"""Pillow quality settings tried for JPEG and WebP."""
METRICS = ("psnr", "ssim", "lpips")
"""Distortion metrics, each used when a metric plugin of that name builds."""
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}

Row = dict[str, str | float | int]
DEFAULT_IMAGES = ("chelsea", "china")
"""photo-patches' default validation photographs, so the default curve is out-of-sample."""


def default_images() -> list[tuple[str, np.ndarray]]:
    """The photographs photo-patches holds out for validation by default."""
    return [(name, sample_photo(name)) for name in DEFAULT_IMAGES]


def folder_images(folder: Path) -> list[tuple[str, np.ndarray]]:
    """Every image file directly in ``folder``, as RGB, by file name."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise LaserError(f"{folder} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return [(path.name, read_pixels(path, 3)) for path in files]


def center_crop(pixels: np.ndarray, multiple: int) -> np.ndarray:
    """The largest centered crop of pixels (H, W, C) whose sides are multiples of ``multiple``."""
    height, width = (side - side % multiple for side in pixels.shape[:2])
    if not height or not width:
        raise LaserError(f"an image of {pixels.shape[:2]} pixels is smaller than {multiple}")
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
    codec: Codec | WholeImageCodec,
    images: list[tuple[str, np.ndarray]],
    distortion: Distortion,
) -> list[Row]:
    """One run's rows: each image compressed alone into a ``.lsr`` container."""
    setting = codec.setting
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


def rate_distortion(
    run_dirs: list[Path], images: list[tuple[str, np.ndarray]], out: Path
) -> list[Row]:
    """Rows for every run and for JPEG and WebP; writes OUT/rd.csv and OUT/rd.png and returns
    the means over images, one row per codec and setting."""
    codecs = {}
    for label, run_dir in zip(labels(run_dirs), run_dirs, strict=True):
        codecs[label] = open_codec(run_dir)
        for name in trained_prior_names(run_dir):  # beside the counts: the learned rates
            codecs[f"{label} +{name}"] = codecs[label].with_prior(name)
    for label, codec in codecs.items():
        if codec.channels != 3:
            raise LaserError(f"run {label} codes {codec.channels}-channel images; rd compares RGB")
    multiple = math.lcm(1, *(codec.tile for codec in codecs.values()))
    images = [(name, center_crop(pixels, multiple)) for name, pixels in images]
    distortion = Distortion()
    for name, reason in distortion.skipped.items():
        log.warning("rd: %s skipped: %s", name, reason)
    rows = [
        row
        for label, codec in codecs.items()
        for row in laser_rows(label, codec, images, distortion)
    ]
    rows += pillow_rows(images, "JPEG", distortion) + pillow_rows(images, "WebP", distortion)
    _write_csv(rows, out / "rd.csv")
    means = mean_rows(rows)
    plot(means, list(distortion.metrics), out / "rd.png")
    return means


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


def _write_csv(rows: list[Row], path: Path) -> None:
    columns = list(dict.fromkeys(key for row in rows for key in row))
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
