"""The hooks a LASER plugin implements: one per component kind, each given a ``register`` callback.

A plugin module implements any of these with ``@laser_core.hookimpl`` and calls
``register(name, factory, config=ConfigModel, summary="...")`` once per component.
``factory(config, context)`` builds the component from its validated config and a
:class:`laser_core.plugin.contracts.BuildContext`. A component class whose constructor takes
``(config, context)`` is its own factory (every built-in bottleneck registers its class), and
the first line of a class's or function's docstring is the summary when none is given.
"""

from __future__ import annotations

from typing import Any, Protocol

import pluggy

PROJECT = "laser"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class Register(Protocol):
    """The callback each hook receives; the host validates every call as it happens."""

    def __call__(
        self, name: str, factory: Any, *, config: type | None = None, summary: str = ""
    ) -> None: ...


@hookspec
def laser_register_encoders(register: Register) -> None:
    """Register encoders: nn.Modules mapping images (B, C, H, W) to latents (B, D, h, w)."""


@hookspec
def laser_register_bottlenecks(register: Register) -> None:
    """Register bottlenecks: laser_core.Bottleneck subclasses built as cls(config, context)."""


@hookspec
def laser_register_decoders(register: Register) -> None:
    """Register decoders: nn.Modules mapping latents (B, D, h, w) back to images."""


@hookspec
def laser_register_discriminators(register: Register) -> None:
    """Register discriminators: nn.Modules scoring images as real or reconstructed."""


@hookspec
def laser_register_datasets(register: Register) -> None:
    """Register datasets: factories returning laser_core.plugin.contracts.DataSplits."""


@hookspec
def laser_register_metrics(register: Register) -> None:
    """Register metrics: objects with per_example() and summarize() (components.Metric)."""


@hookspec
def laser_register_tasks(register: Register) -> None:
    """Register downstream tasks run on a trained run directory (e.g. latent classification)."""
