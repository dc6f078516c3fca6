"""fp32 islands inside mixed-precision training."""

from __future__ import annotations

import torch


def full_precision(z: torch.Tensor) -> torch.autocast:
    """Autocast switched off on z's device. Distances, solves and code statistics run inside
    it in fp32 whatever ``train.precision`` is: bf16 distances pick wrong nearest codes and
    bf16 Gram matrices make pivots unstable."""
    return torch.autocast(device_type=z.device.type, enabled=False)
