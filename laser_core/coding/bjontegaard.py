"""Bjøntegaard deltas: how far apart two rate-distortion curves are, as one number each.

BD-PSNR is the mean PSNR difference (test minus anchor, dB) over the rates both curves span;
BD-rate the mean rate difference (percent, negative = test needs fewer bits) over the PSNRs
both span (G. Bjøntegaard, VCEG-M33, 2001). Each curve is fitted on the log of the rate: PSNR as
a cubic polynomial of log-rate for BD-PSNR, log-rate as a cubic of PSNR for BD-rate, and the
fits' difference is integrated over the overlap.

A cubic needs four points. A curve of two or three points is interpolated piecewise-linearly
instead (both curves then, so the two are measured alike), which is exact between the measured
points and makes no claim beyond them; the result says which method it used. One point is no
curve, and is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from laser_core.errors import LaserError

CUBIC_POINTS = 4
"""Points a curve needs for the cubic fit; with fewer (at least two) the curves are linear."""


@dataclass(frozen=True)
class Curve:
    """A rate-distortion curve: rates (bits per pixel, positive) and the PSNR (dB) at each."""

    rates: Sequence[float]
    psnrs: Sequence[float]

    def log_rates(self) -> np.ndarray:
        return np.log(np.asarray(self.rates, dtype=np.float64))


@dataclass(frozen=True)
class Delta:
    """``bd_rate`` in percent and ``bd_psnr`` in dB of a test curve against an anchor, and
    the ``method`` (``cubic`` or ``linear``) that measured them."""

    bd_rate: float
    bd_psnr: float
    method: str


def bjontegaard(anchor: Curve, test: Curve) -> Delta:
    """BD-rate and BD-PSNR of ``test`` against ``anchor``; a LaserError says why where they
    are not defined (too few points, rates or PSNRs that do not overlap)."""
    for name, curve in (("anchor", anchor), ("test", test)):
        _check(name, curve)
    points = min(len(anchor.rates), len(test.rates))
    method = "cubic" if points >= CUBIC_POINTS else "linear"
    anchor_lr, test_lr = anchor.log_rates(), test.log_rates()
    anchor_psnr = np.asarray(anchor.psnrs, dtype=np.float64)
    test_psnr = np.asarray(test.psnrs, dtype=np.float64)
    bd_psnr = _mean_difference(anchor_lr, anchor_psnr, test_lr, test_psnr, method, "rates")
    log_rate = _mean_difference(anchor_psnr, anchor_lr, test_psnr, test_lr, method, "PSNRs")
    return Delta(bd_rate=100.0 * float(np.expm1(log_rate)), bd_psnr=bd_psnr, method=method)


def _check(name: str, curve: Curve) -> None:
    if len(curve.rates) != len(curve.psnrs):
        raise LaserError(f"the {name} curve has {len(curve.rates)} rates but {len(curve.psnrs)}")
    if len(curve.rates) < 2:
        raise LaserError(
            f"the {name} curve has {len(curve.rates)} point(s); a Bjøntegaard delta needs a "
            f"curve of at least 2 ({CUBIC_POINTS} for the cubic fit)"
        )
    if min(curve.rates) <= 0:
        raise LaserError(f"the {name} curve has a rate <= 0; rates are fitted on their log")


def _mean_difference(
    anchor_x: np.ndarray,
    anchor_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    method: str,
    what: str,
) -> float:
    """The mean of test's y minus anchor's y, each curve's y a function of x, over the x both
    curves span."""
    low = max(anchor_x.min(), test_x.min())
    high = min(anchor_x.max(), test_x.max())
    if not high > low:
        raise LaserError(f"the curves' {what} do not overlap; a Bjøntegaard delta compares them")
    integrals = [
        _integral(x, y, low, high, method) for x, y in ((test_x, test_y), (anchor_x, anchor_y))
    ]
    return float(integrals[0] - integrals[1]) / float(high - low)


def _integral(x: np.ndarray, y: np.ndarray, low: float, high: float, method: str) -> float:
    """The integral from ``low`` to ``high`` of the curve through (x, y): a least-squares
    cubic, or straight lines between the points in order of x."""
    if method == "cubic":
        antiderivative = np.polyint(np.polyfit(x, y, 3))
        return float(np.polyval(antiderivative, high) - np.polyval(antiderivative, low))
    order = np.argsort(x)
    x, y = x[order], y[order]
    if np.any(np.diff(x) <= 0):
        raise LaserError("a curve has two points at the same rate or PSNR; drop one of them")
    inside = x[(x > low) & (x < high)]
    knots = np.concatenate([[low], inside, [high]])
    values = np.interp(knots, x, y)
    return float(np.sum(np.diff(knots) * (values[1:] + values[:-1]) / 2))  # exact for lines
