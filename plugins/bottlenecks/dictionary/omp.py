"""`omp`: sparse codes over a learned dictionary, found by Batch-OMP; the dictionary learns by
gradient, online or K-SVD updates (see :mod:`.sparse_coding`)."""

from __future__ import annotations

from laser_core import BuildContext, Register, hookimpl

from .sparse_coding import DictionaryBottleneck, OMPConfig


def build(config: OMPConfig, context: BuildContext) -> DictionaryBottleneck:
    return DictionaryBottleneck(context.latent_dim, config)


@hookimpl
def laser_register_bottlenecks(register: Register) -> None:
    register(
        "omp",
        build,
        config=OMPConfig,
        summary="sparse codes over a learned dictionary (Batch-OMP; gradient, online or K-SVD)",
    )
