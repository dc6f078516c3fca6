"""``factorized``: Ballé et al. (2017)'s factorized prior (factorized_prior.py)."""

from __future__ import annotations

from laser_core import Register, hookimpl

from .factorized_prior import FactorizedBottleneck, FactorizedConfig


@hookimpl
def laser_register_bottlenecks(register: Register) -> None:
    register("factorized", FactorizedBottleneck, config=FactorizedConfig)
