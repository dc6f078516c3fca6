"""The ``mae`` metric: mean absolute error of reconstructions, per example, on [0, 1] pixels or
in 8-bit levels. Written only against LASER's public API (``laser_core``), as every plugin
should be."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from laser_core import BottleneckOutput, BuildContext, ComponentConfig, Register, hookimpl


class MAEConfig(ComponentConfig):
    scale: Literal["unit", "8bit"] = Field(
        "unit", description="unit: pixels in [0, 1]; 8bit: in levels 0..255, as image files"
    )


class MAE:
    """Mean absolute error of reconstructions, on [0, 1] pixels or in 8-bit levels.

    Per example, averaged over examples by ``summarize``. The registered class is the factory:
    LASER builds it as ``MAE(config, context)`` and ``laser plugins`` shows the first line."""

    def __init__(self, config: MAEConfig, context: BuildContext):
        self.factor = 255.0 if config.scale == "8bit" else 1.0
        self.key = "mae_8bit" if config.scale == "8bit" else "mae"

    def per_example(
        self, images: torch.Tensor, reconstructions: torch.Tensor, output: BottleneckOutput
    ) -> torch.Tensor:
        """(B,) from images and reconstructions (B, C, H, W) in [-1, 1]; reconstructions are
        clamped, as they would be when saved."""
        difference = images.float() - reconstructions.float().clamp(-1, 1)
        return difference.abs().flatten(1).mean(1) / 2 * self.factor

    def summarize(self, values: torch.Tensor) -> dict[str, float]:
        return {self.key: values.mean().item()}


@hookimpl
def laser_register_metrics(register: Register) -> None:
    register("mae", MAE, config=MAEConfig)
