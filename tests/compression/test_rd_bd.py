"""bd.csv: each LASER codec's Bjøntegaard deltas against JPEG and WebP, from rd's means."""

from __future__ import annotations

import math

import pytest

from laser_core.coding.rd import bd_rows

RATES = (0.2, 0.4, 0.8, 1.6)


def means(codec: str, psnr_offset: float, rates=RATES) -> list[dict]:
    """rd's mean rows of a codec on a curve 4 dB per e-fold of rate, raised by ``psnr_offset``."""
    return [
        {
            "codec": codec,
            "setting": f"s{i}",
            "bpp": rate,
            "psnr": 30 + 4 * math.log(rate) + psnr_offset,
        }
        for i, rate in enumerate(rates)
    ]


def test_a_sweep_1_db_below_jpeg_and_2_below_webp_has_those_deltas():
    rows = bd_rows(
        means("sweep", -1.0, (0.3, 0.5, 0.7, 0.9, 1.1))
        + means("lone", 0.0, (0.5,))
        + means("jpeg", 0.0)
        + means("webp", 1.0)
    )
    found = {(r["codec"], r["anchor"]): r for r in rows}
    assert list(found) == [("sweep", "jpeg"), ("sweep", "webp"), ("lone", "jpeg"), ("lone", "webp")]
    for anchor, gap in (("jpeg", -1.0), ("webp", -2.0)):
        row = found[("sweep", anchor)]
        assert (row["points"], row["method"]) == (5, "cubic")
        assert row["bd_psnr_db"] == pytest.approx(gap)
        assert row["bd_rate_percent"] == pytest.approx(100 * (math.exp(-gap / 4) - 1))
        assert row["note"] == ""
    assert found[("lone", "jpeg")]["bd_psnr_db"] == ""
    assert "one run is a point" in found[("lone", "jpeg")]["note"]


def test_a_delta_that_is_not_defined_is_a_note_not_an_error():
    jpeg, _ = bd_rows(means("far", 0.0, (8.0, 9.0)) + means("jpeg", 0.0) + means("webp", 0.0))
    assert "rates do not overlap" in jpeg["note"] and jpeg["bd_rate_percent"] == ""


def test_without_psnr_there_are_no_deltas():
    rows = [{k: v for k, v in r.items() if k != "psnr"} for r in means("x", 0) + means("jpeg", 0)]
    assert bd_rows(rows) == []


def test_a_sweep_of_two_runs_is_measured_on_straight_lines():
    (row, _) = bd_rows(means("sweep", 0.5, (0.3, 0.6)) + means("jpeg", 0.0) + means("webp", 0.0))
    assert (row["points"], row["method"]) == (2, "linear")
    assert row["bd_psnr_db"] == pytest.approx(0.5)
