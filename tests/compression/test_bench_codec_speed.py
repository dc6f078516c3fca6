"""tools/bench_codec_speed.py codes a photograph with any run and with WebP at a similar rate."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tests.compression.photos import photo_pixels

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))  # the tools import their shared doc_section, machine
spec = importlib.util.spec_from_file_location(
    "bench_codec_speed", ROOT / "tools" / "bench_codec_speed.py"
)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

pytestmark = pytest.mark.slow  # trains a tiny model (conftest.py)


def test_a_run_and_webp_at_a_similar_rate_are_timed_as_a_ratio(trained_run):
    pixels = photo_pixels("coffee", 64, 96)
    text = bench.measure(trained_run("vq"), pixels, None, threads=1, repeats=1)
    rows = {
        line.split("|")[1].split()[0]: [cell.strip() for cell in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith(("| LASER", "| WebP"))
    }
    laser_bpp, webp_bpp = float(rows["LASER"][1]), float(rows["WebP"][1])
    assert abs(webp_bpp - laser_bpp) < 0.25 * laser_bpp
    assert "the centre 64x96 of scikit-image retina.jpg" in text
    assert "x** WebP's time to encode and decode" in text


def test_a_photograph_smaller_than_the_benchmark_size_is_refused(tmp_path):
    from PIL import Image

    from laser_core.errors import LaserError

    small = tmp_path / "small.png"
    Image.fromarray(photo_pixels("coffee", 64, 96)).save(small)
    with pytest.raises(LaserError, match="needs 512x768"):
        bench.photograph(small)
    assert bench.photograph(None).shape == (512, 768, 3)


def test_the_refining_encoder_is_timed_in_the_same_turns(codec_run):
    pixels = photo_pixels("coffee", 64, 96)
    text = bench.measure(codec_run("factorized"), pixels, None, threads=1, repeats=1, refine=3)
    (refined,) = [line for line in text.splitlines() if "`--refine 3`" in line]
    cells = [cell.strip() for cell in refined.strip("|").split("|")]
    assert float(cells[1]) > 0 and float(cells[3]) > 0  # bpp, encode ms
    assert "--refine 3\n```" in text
    assert "Refining the latents (3 steps) takes **" in text
