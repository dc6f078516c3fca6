"""The component blocks of a recipe, written once: the recipe model, resolution, the run
directory and the JSON Schema all read this table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Presence = Literal["required", "optional", "list"]


@dataclass(frozen=True)
class BlockSpec:
    """One recipe key whose value picks a component by ``name``.

    key: the recipe key, e.g. ``bottleneck``; kind: the component kind (its hook's suffix,
    e.g. ``bottlenecks``); singular: how messages name one component of the kind;
    presence: ``required`` and ``optional`` blocks are one mapping, ``list`` a list of them.
    """

    key: str
    kind: str
    singular: str
    presence: Presence


BLOCKS: tuple[BlockSpec, ...] = (
    BlockSpec("data", "datasets", "dataset", "required"),
    BlockSpec("encoder", "encoders", "encoder", "required"),
    BlockSpec("bottleneck", "bottlenecks", "bottleneck", "required"),
    BlockSpec("decoder", "decoders", "decoder", "required"),
    BlockSpec("discriminator", "discriminators", "discriminator", "optional"),
    BlockSpec("metrics", "metrics", "metric", "list"),
    BlockSpec("task", "tasks", "task", "optional"),
)

BLOCK_KEYS = tuple(spec.key for spec in BLOCKS)
KINDS = tuple(spec.kind for spec in BLOCKS)
"""Every component kind, named as its hook (``laser_register_<kind>``)."""

_SINGULAR = {spec.kind: spec.singular for spec in BLOCKS}


def singular(kind: str) -> str:
    """``bottlenecks`` -> ``bottleneck``: one component of ``kind`` in a message."""
    return _SINGULAR.get(kind, kind)
