"""`ksvd`: the dictionary bottleneck whose dictionary learns by K-SVD.

A recipe-level name for ``omp`` with ``update: ksvd``: the same module, coding and training
loop, configured by the keys that apply to K-SVD. After every optimizer step the step's signals
go through ``ksvd_iterations`` rounds of Batch-OMP coding and approximate K-SVD atom updates
(``laser_core.ops.ksvd``); atoms no signal uses are re-initialised from the worst-represented
signals; statistics are summed over processes so every rank keeps the same dictionary.
"""

from __future__ import annotations

from pydantic import Field

from laser_core import BuildContext, PositiveInt, Register, hookimpl

from .sparse_coding import DictionaryBottleneck, OMPConfig, SparseCodingConfig


class KSVDConfig(SparseCodingConfig):
    ksvd_iterations: PositiveInt = Field(1, description="K-SVD rounds per optimizer step")


class KSVDBottleneck(DictionaryBottleneck):
    """Sparse codes over a dictionary learned by K-SVD (Batch-OMP codes).

    ``omp`` with ``update: ksvd``, configured by the keys that apply to K-SVD."""

    def __init__(self, config: KSVDConfig, context: BuildContext):
        super().__init__(OMPConfig(update="ksvd", **config.model_dump()), context)


@hookimpl
def laser_register_bottlenecks(register: Register) -> None:
    register("ksvd", KSVDBottleneck, config=KSVDConfig)
