"""CompressAI's entropy models and GDN, for the ``factorized`` and ``hyperprior`` bottlenecks
and the ``gdn-analysis`` and ``gdn-synthesis`` transforms: the one place that imports it.

CompressAI 1.2.8 scripts a helper with ``torch.jit.script`` at import, which torch 2.5 and
later deprecate with a FutureWarning that says nothing a LASER user can act on; only that
warning is silenced, only here.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning
    )
    from compressai.entropy_models import EntropyBottleneck, GaussianConditional
    from compressai.layers import GDN

__all__ = ["GDN", "EntropyBottleneck", "GaussianConditional"]
