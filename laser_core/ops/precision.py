"""IEEE fp32 matrix products whatever the global TF32 settings.

Accelerate turns TF32 on in some configurations and users often call
``torch.set_float32_matmul_precision("high")``; a TF32 product carries ~1e-3 relative error,
while OMP's pivot test (``DEGENERATE_PIVOT = 1e-6``), nearest-code distances and Gram matrices
assume true fp32, and the Triton kernels compute in IEEE fp32, so the paths would disagree.
The ops run their products inside :func:`ieee_fp32`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

_MATMUL_BACKENDS = (torch.backends.cuda.matmul, torch.backends.mkldnn.matmul)


@contextmanager
def ieee_fp32() -> Iterator[None]:
    """Matrix products (cuBLAS, oneDNN) in IEEE fp32 inside, the caller's settings restored
    after. Uses the per-backend ``fp32_precision`` API, which reads either the legacy
    (``allow_tf32``, ``set_float32_matmul_precision``) or the new settings, and restoring it
    leaves both readable as the caller left them."""
    saved = [backend.fp32_precision for backend in _MATMUL_BACKENDS]
    try:
        for backend in _MATMUL_BACKENDS:
            backend.fp32_precision = "ieee"
        yield
    finally:
        for backend, precision in zip(_MATMUL_BACKENDS, saved, strict=True):
            backend.fp32_precision = precision
