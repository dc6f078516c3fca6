"""Encode + decode time of a LASER run against Pillow's WebP at a similar rate, on one 512x768
photograph, as a ratio measured in one run; with --write-docs, replace the section "Speed
against WebP" of docs/compression.md.

    python tools/bench_codec_speed.py RUN_DIR                 # print the table
    python tools/bench_codec_speed.py RUN_DIR --write-docs    # and update docs/compression.md

The photograph is the centre 512x768 of scikit-image's ``retina.jpg`` (a fundus photograph,
1411x1411; no shipped photograph of scikit-image or scikit-learn but it and the Hubble deep
field is that large), or the centre of ``--image``. LASER codes it as ``laser compress`` and
``laser decompress`` do, in-process on ``--threads`` torch threads (default 2): the run's codec
is opened once (timed apart, like loading a library), then each repeat compresses the image
into ``.lsr`` bytes and decompresses them. WebP is Pillow's, at the quality whose file is
closest in size to LASER's (Pillow's WebP encoder runs on one thread), encoding the pixels to
bytes and decoding them back. The two take turns, repeat after repeat, so a shared machine
slows both alike; each time is the median of the repeats, and the load average is recorded
with them. Any run directory ``laser compress`` takes works: tiled runs and whole-image ones.
``--refine STEPS`` adds the run's codec refining each image's latents (``laser compress
--refine``), timed in the same turns.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch
from doc_section import publish
from machine import LoadSampler, describe, load
from PIL import Image

from laser_core.coding.opening import open_codec
from laser_core.data.images import from_pixels, read_pixels, to_pixels
from laser_core.errors import LaserError

DOC = Path(__file__).resolve().parents[1] / "docs" / "compression.md"
START, END = "<!-- codec speed: start -->", "<!-- codec speed: end -->"
HEIGHT, WIDTH = 512, 768
"""The size of a Kodak photograph, landscape."""


def photograph(path: Path | None) -> np.ndarray:
    """The centre HEIGHT x WIDTH of ``path`` (default: scikit-image's retina.jpg), uint8 RGB."""
    source = path or Path(str(files("skimage") / "data" / "retina.jpg"))
    pixels = read_pixels(source, 3)
    height, width = pixels.shape[:2]
    if height < HEIGHT or width < WIDTH:
        raise LaserError(f"{source} is {height}x{width}; the benchmark needs {HEIGHT}x{WIDTH}")
    top, left = (height - HEIGHT) // 2, (width - WIDTH) // 2
    return np.ascontiguousarray(pixels[top : top + HEIGHT, left : left + WIDTH])


def bpp(data: bytes, pixels: np.ndarray) -> float:
    return 8 * len(data) / (pixels.shape[0] * pixels.shape[1])


def psnr(original: np.ndarray, decoded: np.ndarray) -> float:
    error = np.mean((original.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / error))


def webp_encode(pixels: np.ndarray, quality: int) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="WebP", quality=quality)
    return buffer.getvalue()


def webp_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


def closest_quality(pixels: np.ndarray, target_bpp: float) -> int:
    """The WebP quality (0 to 100) whose file's rate is closest to ``target_bpp``, found by
    bisection: the rate grows with the quality."""
    low, high = 0, 100
    while low < high:  # the lowest quality whose rate reaches the target, or 100
        middle = (low + high) // 2
        if bpp(webp_encode(pixels, middle), pixels) < target_bpp:
            low = middle + 1
        else:
            high = middle
    candidates = {max(low - 1, 0), low}
    return min(candidates, key=lambda q: abs(bpp(webp_encode(pixels, q), pixels) - target_bpp))


def median_times(steps: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time in seconds of each step, the steps taking turns in every repeat."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def measure(
    run_dir: Path,
    pixels: np.ndarray,
    image: Path | None,
    threads: int,
    repeats: int,
    refine: int = 0,
) -> str:
    """The section's text: the command, the machine, and the table of times and their ratio
    of coding ``pixels`` (H, W, 3), read from ``image`` (None: the default photograph), and
    with ``refine`` steps of the refining encoder too. Torch runs on ``threads`` threads
    meanwhile, and on as many as before afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _measure(run_dir, pixels, image, threads, repeats, refine)
    finally:
        torch.set_num_threads(before)


def _measure(
    run_dir: Path, pixels: np.ndarray, image: Path | None, threads: int, repeats: int, refine: int
) -> str:
    started = time.perf_counter()
    codec = open_codec(run_dir)
    opened = time.perf_counter() - started
    tensor = from_pixels(pixels)
    lsr, _ = codec.compress([tensor])  # warm-up, and the rate WebP is matched to
    (decoded,) = codec.decompress(lsr, "benchmark")
    quality = closest_quality(pixels, bpp(lsr, pixels))
    webp = webp_encode(pixels, quality)
    steps = {
        "laser encode": lambda: codec.compress([tensor]),
        "laser decode": lambda: codec.decompress(lsr, "benchmark"),
        "webp encode": lambda: webp_encode(pixels, quality),
        "webp decode": lambda: webp_decode(webp),
    }
    if refine:
        refining = open_codec(run_dir, refine=refine)
        refined_lsr, _ = refining.compress([tensor])
        (refined_decoded,) = codec.decompress(refined_lsr, "benchmark")
        steps["refined encode"] = lambda: refining.compress([tensor])
        steps["refined decode"] = lambda: codec.decompress(refined_lsr, "benchmark")
    load_before = load()
    with LoadSampler() as sampler:
        begin = time.time()
        seconds = median_times(steps, repeats)
        mean_load = sampler.mean(begin, time.time())
    laser = seconds["laser encode"] + seconds["laser decode"]
    pillow = seconds["webp encode"] + seconds["webp decode"]
    name = image.name if image else "scikit-image retina.jpg"
    height, width = pixels.shape[:2]
    lines = [
        "```bash",
        f"python tools/bench_codec_speed.py {run_dir} --threads {threads} --repeats {repeats}"
        + (f" --image {image}" if image else "")
        + (f" --refine {refine}" if refine else ""),
        "```",
        "",
        f"- {describe()} at the start; mean 1-minute load while timing {mean_load:.1f} "
        f"(before: {load_before})",
        f"- photograph: the centre {height}x{width} of {name}; LASER on {threads} torch threads, "
        f"codec opened once in {opened:.2f} s (not in the times); median of {repeats} "
        "repeats, taking turns",
        "",
        "| codec | bpp | PSNR | encode ms | decode ms | encode + decode ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| LASER `{run_dir.name}` | {bpp(lsr, pixels):.3f} "
        f"| {psnr(pixels, to_pixels(decoded)):.2f} | {1e3 * seconds['laser encode']:.0f} "
        f"| {1e3 * seconds['laser decode']:.0f} | {1e3 * laser:.0f} |",
        f"| WebP q={quality} (Pillow) | {bpp(webp, pixels):.3f} "
        f"| {psnr(pixels, webp_decode(webp)):.2f} "
        f"| {1e3 * seconds['webp encode']:.0f} | {1e3 * seconds['webp decode']:.0f} "
        f"| {1e3 * pillow:.0f} |",
    ]
    if refine:
        refined = seconds["refined encode"] + seconds["refined decode"]
        lines.append(
            f"| LASER `{run_dir.name}`, `--refine {refine}` | {bpp(refined_lsr, pixels):.3f} "
            f"| {psnr(pixels, to_pixels(refined_decoded)):.2f} "
            f"| {1e3 * seconds['refined encode']:.0f} | {1e3 * seconds['refined decode']:.0f} "
            f"| {1e3 * refined:.0f} |"
        )
    lines += [
        "",
        f"LASER takes **{laser / pillow:.1f}x** WebP's time to encode and decode "
        f"(encode {seconds['laser encode'] / seconds['webp encode']:.1f}x, decode "
        f"{seconds['laser decode'] / seconds['webp decode']:.1f}x); WebP's file is "
        f"{100 * (len(webp) / len(lsr) - 1):+.0f}% against LASER's size"
        + (" (the closest WebP reaches on this photograph)" if quality in (0, 100) else "")
        + "."
        + (
            f" Refining the latents ({refine} steps) takes **{refined / pillow:.0f}x** WebP's "
            f"time (encode {seconds['refined encode'] / seconds['webp encode']:.0f}x)."
            if refine
            else ""
        ),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", type=Path, help="a trained run that `laser compress` takes")
    parser.add_argument("--image", type=Path, help=f"a photograph of at least {HEIGHT}x{WIDTH}")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--refine", type=int, default=0, metavar="STEPS", help="also time laser compress --refine"
    )
    parser.add_argument("--write-docs", action="store_true", help="update docs/compression.md")
    args = parser.parse_args()
    try:
        pixels = photograph(args.image)
        text = measure(args.run_dir, pixels, args.image, args.threads, args.repeats, args.refine)
    except LaserError as error:
        raise SystemExit(f"bench_codec_speed: {error}") from None
    publish(DOC, START, END, text, args.write_docs)


if __name__ == "__main__":
    main()
