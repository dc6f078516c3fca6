"""Bjøntegaard deltas on curves whose answer is known by hand."""

from __future__ import annotations

import math

import pytest

from laser_core.coding.bjontegaard import Curve, bjontegaard
from laser_core.errors import LaserError

RATES = [0.1, 0.25, 0.5, 1.0, 2.0]


def anchor_psnr(rate: float) -> float:
    """A concave curve, as real codecs draw: a quadratic in log-rate."""
    log_rate = math.log(rate)
    return 32.0 + 4.0 * log_rate - 0.3 * log_rate**2


def curve(rates: list[float], psnr_offset: float = 0.0, rate_scale: float = 1.0) -> Curve:
    return Curve([r * rate_scale for r in rates], [anchor_psnr(r) + psnr_offset for r in rates])


@pytest.mark.parametrize("points", [5, 4, 3, 2])
def test_a_curve_at_0_8_times_the_rate_has_bd_rate_minus_20_percent(points):
    rates = RATES[:points]
    delta = bjontegaard(curve(rates), curve(rates, rate_scale=0.8))
    assert delta.bd_rate == pytest.approx(-20.0, abs=1e-9)
    assert delta.method == ("cubic" if points >= 4 else "linear")


@pytest.mark.parametrize("points", [5, 2])
def test_a_curve_a_constant_above_has_that_bd_psnr_and_the_matching_bd_rate(points):
    """A line in log-rate, 4 dB per e-fold of rate, raised by 1.5 dB: the same PSNR at
    exp(-1.5 / 4) of the rate, 31.3% fewer bits."""
    rates = RATES[:points]
    anchor = Curve(rates, [30.0 + 4.0 * math.log(r) for r in rates])
    test = Curve(rates, [31.5 + 4.0 * math.log(r) for r in rates])
    delta = bjontegaard(anchor, test)
    assert delta.bd_psnr == pytest.approx(1.5, abs=1e-9)
    assert delta.bd_rate == pytest.approx(100 * (math.exp(-1.5 / 4.0) - 1), abs=1e-9)
    assert delta.bd_rate == pytest.approx(-31.27, abs=0.01)


def test_bd_psnr_of_a_curve_at_0_8_times_the_rate_is_the_mean_gain_over_the_overlap():
    """Shifting the concave curve left by ln 0.8 in log-rate: its PSNR at each log-rate x is
    the anchor's at x - ln 0.8; the mean difference over the overlap is the integral of the
    quadratic, worked out in closed form."""
    delta = bjontegaard(curve(RATES), curve(RATES, rate_scale=0.8))
    low, high = math.log(RATES[0]), math.log(0.8 * RATES[-1])

    def integral(shift: float) -> float:  # of anchor_psnr(exp(x - shift)) over [low, high]
        def f(x: float) -> float:
            u = x - shift
            return 32.0 * u + 2.0 * u**2 - 0.1 * u**3

        return f(high) - f(low)

    expected = (integral(math.log(0.8)) - integral(0.0)) / (high - low)
    assert delta.bd_psnr == pytest.approx(expected, abs=1e-9)
    assert delta.bd_psnr > 0  # fewer bits for the same pictures: a gain


def test_swapping_the_curves_flips_the_signs():
    a, b = curve(RATES), curve(RATES, psnr_offset=-0.7, rate_scale=1.1)
    forward, backward = bjontegaard(a, b), bjontegaard(b, a)
    assert backward.bd_psnr == pytest.approx(-forward.bd_psnr)
    assert (1 + forward.bd_rate / 100) * (1 + backward.bd_rate / 100) == pytest.approx(1.0)


def test_a_cubic_is_used_only_when_both_curves_have_four_points():
    assert bjontegaard(curve(RATES), curve(RATES[1:4], 0.5)).method == "linear"


@pytest.mark.parametrize(
    ("anchor", "test", "message"),
    [
        (curve(RATES), curve([0.5]), "1 point"),
        (curve(RATES), curve([5.0, 8.0]), "rates do not overlap"),
        (curve(RATES), Curve([0.0, 1.0], [20.0, 30.0]), "rate <= 0"),
        (curve(RATES), Curve([0.2, 0.2, 0.4], [25.0, 25.0, 27.0]), "same rate"),
    ],
)
def test_undefined_deltas_are_refused_saying_why(anchor, test, message):
    with pytest.raises(LaserError, match=message):
        bjontegaard(anchor, test)
