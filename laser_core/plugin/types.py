"""Value domains for config fields, shared by the core's models and plugin configs.

YAML turns ``true`` into a bool, which pydantic would take as 1, and ``.inf`` into a float
that would train a model on nan. These types refuse both, so a wrong value fails at
``laser validate`` with its file and line instead of somewhere in training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import (
    AllowInfNan,
    BeforeValidator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Strict,
)
from pydantic_core import core_schema

MAX_SEED = 2**32 - 1  # what Accelerate's set_seed (numpy's legacy seeding) accepts
MAX_INT = 2**63 - 1  # torch's int64: counts beyond it overflow in tensors and schedules


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"{value} is a bool, not a number")
    return value


PositiveInt = Annotated[int, Strict(), Ge(1), Le(MAX_INT)]
"""A count or size: an integer >= 1; a bool or a float such as 2.0 is refused."""

NonNegativeInt = Annotated[int, Strict(), Ge(0), Le(MAX_INT)]
"""An integer >= 0, e.g. steps where 0 means "never"."""

Seed = Annotated[int, Strict(), Ge(0), Le(MAX_SEED)]
"""A random seed in [0, 2**32 - 1]."""

FiniteFloat = Annotated[float, BeforeValidator(_not_bool), AllowInfNan(False)]
"""A real number: not inf, not nan, not a bool. Strings such as "1e-4" still convert."""

NonNegativeFloat = Annotated[FiniteFloat, Ge(0)]
"""A weight or a rate that may be 0 (turned off)."""

PositiveFloat = Annotated[FiniteFloat, Gt(0)]
"""A learning rate, a clipping norm: finite and > 0."""

UnitInterval = Annotated[FiniteFloat, Ge(0), Le(1)]
"""A fraction in [0, 1]."""

AdamBeta = Annotated[FiniteFloat, Ge(0), Lt(1)]
"""One of Adam's betas: in [0, 1), as torch.optim.Adam requires."""


@dataclass(frozen=True)
class AtMost:
    """An upper bound whose error says why, e.g. ``Annotated[int, AtMost(64, "...")]``; the
    JSON Schema shows it as ``maximum``."""

    limit: int
    why: str

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        return core_schema.no_info_after_validator_function(self._check, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: GetJsonSchemaHandler) -> Any:
        return {**handler(schema), "maximum": self.limit}

    def _check(self, value: int) -> int:
        if value > self.limit:
            raise ValueError(f"{value} is more than {self.limit:,}: {self.why}")
        return value


MAX_CODES = 2**20

CodebookSize = Annotated[
    int,
    Strict(),
    Ge(2),
    AtMost(
        MAX_CODES,
        "each training batch compares every latent with every code and the codebook keeps "
        "statistics per code, which beyond 2**20 codes outgrow any GPU; the largest codebooks "
        "in the literature hold 2**18",
    ),
]
"""The number of codes of a codebook: 2 to 2**20."""
