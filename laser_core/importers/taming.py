"""``laser import taming CKPT --config CONFIG.yaml``: taming-transformers' VQGAN checkpoints.

The training YAML gives ``ddconfig``, ``n_embed`` and ``embed_dim``; the Lightning checkpoint's
``state_dict`` holds ``encoder.``, ``decoder.``, ``quantize.``, ``quant_conv.`` and
``post_quant_conv.`` weights. Neither taming nor Lightning is imported: the YAML is read as
data and the checkpoint by :mod:`laser_core.importers.checkpoint_reader`. The loss's weights
(LPIPS, discriminator) are ignored and listed in imported.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from laser_core.errors import LaserError
from laser_core.importers.checkpoint_reader import read_state_dict
from laser_core.importers.run_writer import ImportedModel, default_data

SUPPORTED_TARGETS = ("taming.models.vqgan.VQModel",)
ARCHITECTURE_KEYS = ("ch", "ch_mult", "num_res_blocks", "attn_resolutions", "dropout", "z_channels")


def read_taming(checkpoint: Path, config: Path) -> ImportedModel:
    params = _model_params(config)
    ddconfig = params["ddconfig"]
    architecture = {key: ddconfig[key] for key in ARCHITECTURE_KEYS if key in ddconfig}
    if ddconfig.get("double_z", False):
        raise LaserError(f"{config}: ddconfig.double_z is true, which a VQModel does not use")
    blocks = {
        "data": default_data(int(ddconfig.get("resolution", 256))),
        "encoder": {"name": "laser:vqgan", **architecture, "latent_dim": params["embed_dim"]},
        "bottleneck": {
            "name": "laser:vq",
            "codebook_size": params["n_embed"],
            "commitment_weight": 0.25,  # taming's VectorQuantizer's fixed beta
            "update": "gradient",
            "kmeans_init": False,
            "revive_dead_codes": False,
        },
        "decoder": {"name": "laser:vqgan", **architecture},
    }
    weights, ignored = _rename(read_state_dict(checkpoint), checkpoint)
    return ImportedModel(checkpoint, "taming-transformers", blocks, weights, ignored)


def _model_params(config: Path) -> dict[str, Any]:
    try:
        content = yaml.safe_load(config.read_text())
        model = content["model"]
        target, params = model["target"], model["params"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise LaserError(
            f"{config}: not a taming training config with model.target and model.params "
            f"({type(error).__name__}: {error})"
        ) from None
    if target not in SUPPORTED_TARGETS:
        raise LaserError(
            f"{config}: model.target {target!r} is not supported; LASER imports "
            f"{', '.join(SUPPORTED_TARGETS)}"
        )
    missing = [k for k in ("ddconfig", "n_embed", "embed_dim") if k not in params]
    if missing:
        raise LaserError(f"{config}: model.params lacks {', '.join(missing)}")
    return params


def _rename(
    state: dict[str, torch.Tensor], checkpoint: Path
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """taming's keys -> LASER's: the 1x1 convolutions move into the encoder and decoder."""
    weights, ignored, unknown = {}, [], []
    for key, tensor in state.items():
        if key.startswith(("encoder.", "decoder.")):
            weights[key] = tensor
        elif key.startswith("quant_conv."):
            weights["encoder." + key] = tensor
        elif key.startswith("post_quant_conv."):
            weights["decoder." + key] = tensor
        elif key == "quantize.embedding.weight":
            weights["bottleneck.codebook.weight"] = tensor
        elif key.startswith("loss."):
            ignored.append(key)
        else:
            unknown.append(key)
    if unknown:
        raise LaserError(f"{checkpoint}: keys LASER cannot map: {', '.join(sorted(unknown)[:20])}")
    return weights, ignored
