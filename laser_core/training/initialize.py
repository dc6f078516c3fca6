"""Start training from another run's weights (``train.init_from``), trained here or imported,
and keep parts fixed (``train.freeze``): fine-tuning a pretrained tokenizer, or a new
bottleneck between a pretrained encoder and decoder."""

from __future__ import annotations

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from laser_core.assembly.build import Autoencoder
from laser_core.errors import LaserError
from laser_core.recipes.model import Recipe
from laser_core.rundir.layout import RunDir


def initialize_from(model: Autoencoder, recipe: Recipe) -> str:
    """Load ``train.init_from``'s weights into ``model``; returns a line saying what was
    loaded and what was left as built. Anything that does not fit is an error, before training:
    with ``strict``, every weight must match by name and shape; without it, the weights whose
    names and shapes match are loaded and the rest of the model keeps its initialisation."""
    init = recipe.train.init_from
    assert init is not None
    source = RunDir(init.run).model_safetensors
    where = f"{recipe.source}: train.init_from"
    if not source.is_file():
        raise LaserError(f"{where}: {source} does not exist; name a finished or imported run")
    try:
        weights = load_file(str(source))
    except (SafetensorError, OSError) as error:
        raise LaserError(f"{where}: {source} is unreadable ({error})") from None
    state = model.state_dict()
    fits = {k: v for k, v in weights.items() if k in state and v.shape == state[k].shape}
    misshapen = [
        f"{k} {tuple(weights[k].shape)} -> {tuple(state[k].shape)}"
        for k in weights
        if k in state and k not in fits
    ]
    left = sorted(set(state) - set(fits))
    missing = sorted(set(state) - set(weights))
    unused = sorted(set(weights) - set(state))
    if init.strict and (misshapen or missing or unused):
        raise LaserError(
            f"{where}: {source} does not fit this recipe's model"
            + "".join(
                f"; {label}: {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}"
                for label, keys in (
                    ("shapes differ", misshapen),
                    ("missing", missing),
                    ("not in the model", unused),
                )
                if keys
            )
            + f". To load only what fits: train.init_from: {{run: {init.run}, strict: false}}"
        )
    if not fits:
        raise LaserError(f"{where}: no weight of {source} fits this recipe's model")
    with torch.no_grad():
        model.load_state_dict({**state, **fits})
    parts = sorted({k.split(".")[0] for k in left})
    kept = f"; left as built: {', '.join(parts)}" if parts else ""
    return f"initialised {len(fits)} of {len(state)} tensors from {source}{kept}"


def freeze(model: Autoencoder, parts: list[str]) -> None:
    """Parts listed in ``train.freeze`` keep their weights: no gradient, no optimizer state,
    and eval mode throughout (see :meth:`Autoencoder.train`)."""
    for part in parts:
        for parameter in getattr(model, part).parameters():
            parameter.requires_grad_(False)
    model.frozen = tuple(parts)
    model.train(model.training)
