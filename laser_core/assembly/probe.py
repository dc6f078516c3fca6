"""Blame and probes: whatever goes wrong while a recipe's component is built or first run
becomes one message naming the component, its plugin and the recipe line; probe batches run
through fresh components without changing them or the random streams of training."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from laser_core.errors import ContractError, LaserError, PluginError, Problem, RecipeError
from laser_core.plugin.blocks import singular
from laser_core.plugin.contracts import BuildContext
from laser_core.plugin.registry import describe_error, plugin_root
from laser_core.recipes.model import Block


@contextmanager
def blame(block: Block, doing: str = "") -> Iterator[None]:
    """Turn whatever goes wrong while building or probing ``block``'s component into one
    message naming the kind, the component, its plugin and, when known, the recipe line: a
    LaserError (ComponentError) is the recipe's problem, a broken contract or any other
    exception the plugin's."""
    try:
        yield
    except (KeyboardInterrupt, RecipeError):
        raise
    except ContractError as error:
        raise PluginError(f"{_whose(block)} breaks its contract{doing}: {error}") from None
    except LaserError as error:
        if not block.where:
            raise LaserError(f"{_whose(block)}: {error}") from None
        message = f"'{block.component.name}' from plugin {block.component.provider}: {error}"
        raise RecipeError([Problem(block.where, block.key, message)]) from None
    except BaseException as error:  # a plugin's bug or sys.exit: never a bare traceback
        source = plugin_root(block.component.factory.__module__)
        raise PluginError(
            f"{_whose(block)} failed{doing}: {describe_error(error, source)}; "
            f"{DEBUG_HINT} for the traceback"
        ) from error


DEBUG_HINT = "rerun with --debug (or LASER_DEBUG=1)"


def owner(block: Block) -> str:
    component = block.component
    return f"{singular(component.kind)} '{component.name}' from plugin {component.provider}"


def _whose(block: Block) -> str:
    return f"{block.where}: {owner(block)}" if block.where else owner(block)


@contextmanager
def probing(*modules: nn.Module) -> Iterator[None]:
    """Run a probe through freshly built modules without changing them or the training run:
    eval mode (no EMA, k-means or batch-norm updates), no gradients, and every random
    generator (torch, numpy, Python) left as it was. Each submodule gets its own mode back,
    so a part a plugin keeps in eval mode (a frozen backbone) stays there."""
    modes = [(sub, sub.training) for m in modules for sub in m.modules()]
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        for m in modules:
            m.eval()
        try:
            yield
        finally:
            for sub, mode in modes:
                sub.training = mode
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def probe_images(context: BuildContext, batch: int = 2) -> torch.Tensor:
    """Images in [-1, 1] of the recipe's size, the same every time."""
    generator = torch.Generator().manual_seed(0)
    shape = (batch, context.image_channels, context.image_size, context.image_size)
    return torch.rand(shape, generator=generator) * 2 - 1
