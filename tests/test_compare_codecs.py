"""tools/compare_codecs.py: one sweep per family whose recipe exists, and a "who wins where"
sentence that says what the curves say, whichever way they fall."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from laser_core.coding.bjontegaard import Curve

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # the tools import their shared modules
spec = importlib.util.spec_from_file_location(
    "compare_codecs", ROOT / "tools" / "compare_codecs.py"
)
compare = importlib.util.module_from_spec(spec)
sys.modules["compare_codecs"] = compare  # dataclasses look their module up there
spec.loader.exec_module(compare)

FAMILIES = [f for f in compare.FAMILIES if f.name in ("factorized", "vq")]
TITLES = compare.shown_curves(FAMILIES, set())
CURVES = {
    "factorized": Curve([0.2, 0.4, 0.8], [26.0, 28.0, 30.0]),
    "vq": Curve([0.1, 0.3, 0.6], [25.0, 27.8, 28.5]),
    "jpeg": Curve([0.1, 0.5, 1.0], [22.0, 27.0, 30.0]),
}


def test_the_winner_at_each_rate_is_the_higher_curve_and_jpeg_is_the_yardstick():
    sentence = compare.winners(CURVES, TITLES, (0.15, 0.25, 0.5, 2.0))
    # PSNR interpolated in log-rate between the measured points
    assert sentence.split("; ") == [
        "At 0.15 bpp the VQ (vq-rate) wins with 26.03 dB (the only family reaching this rate, "
        "JPEG 23.26)",
        "at 0.25 bpp the VQ (vq-rate) wins with 27.34 dB (the factorized prior 26.64, JPEG 24.85)",
        "at 0.5 bpp the factorized prior wins with 28.64 dB (the VQ (vq-rate) 28.32, JPEG 27.00).",
    ]  # no curve reaches 2 bpp


def test_no_curve_at_the_asked_rates_is_said_so():
    assert compare.winners(CURVES, TITLES, (4.0,)).startswith("No family's curve reaches")


def test_a_missing_recipe_leaves_its_family_out_and_a_present_one_is_swept(tmp_path):
    families, missing = compare.available(compare.FAMILIES)
    assert all((ROOT / f.recipe).is_file() for f in families)
    assert all(not (ROOT / f.recipe).is_file() for f in missing)
    commands = compare.commands(families, Path("runs/codecs"), 100)
    sweeps = [c for c in commands if c[1] == "sweep"]
    assert [c[2] for c in sweeps] == [f.recipe for f in families]
    assert all("train.steps=100" in c and c[6].startswith("losses.rate=") for c in sweeps)
    # every family on the same crops, whatever its recipe draws
    assert all(f"data.train_patches={compare.TRAIN_CROPS}" in c for c in sweeps)
    assert commands[-1][:2] == ["laser", "rd"] and len(commands[-1]) == len(families) + 6
    assert commands[-1][-4:-2] == ["--refine", str(compare.REFINE_STEPS)]


def test_a_refined_curve_is_shown_after_its_family_where_rd_measured_one():
    titles = compare.shown_curves(FAMILIES, {"factorized", "factorized refined", "vq"})
    assert titles == {
        "factorized": "factorized prior",
        "factorized refined": "factorized prior, refined",
        "vq": "VQ (vq-rate)",
    }
    curves = {**CURVES, "factorized refined": Curve([0.2, 0.4, 0.8], [26.5, 28.5, 30.5])}
    sentence = compare.winners(curves, titles, (0.5,))
    assert sentence.startswith("At 0.5 bpp the factorized prior, refined wins with 29.14 dB")
    assert "+0.50" in compare.bd_table(curves, titles).splitlines()[1]


def test_a_resumed_comparison_counts_its_running_time_and_not_the_pause():
    samples = [0.0, 10.0, 20.0, 30.0, 3600.0, 3610.0, 3620.0]
    assert compare.running_minutes(samples, every=10.0) == 50.0 / 60
