"""`omp`: sparse codes over a learned dictionary, found by Batch-OMP; the dictionary learns by
gradient, online or K-SVD updates (see :mod:`.sparse_coding`)."""

from __future__ import annotations

from laser_core import Register, hookimpl

from .sparse_coding import DictionaryBottleneck, OMPConfig


@hookimpl
def laser_register_bottlenecks(register: Register) -> None:
    register("omp", DictionaryBottleneck, config=OMPConfig)
