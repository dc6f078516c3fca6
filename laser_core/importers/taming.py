"""``laser import taming CKPT --config CONFIG.yaml``: taming-transformers' VQGAN checkpoints.

The training YAML gives ``ddconfig``, ``n_embed`` and ``embed_dim``; the Lightning checkpoint's
``state_dict`` holds ``encoder.``, ``decoder.``, ``quantize.``, ``quant_conv.`` and
``post_quant_conv.`` weights. Neither taming nor Lightning is imported: the YAML is read as
data and the checkpoint by :mod:`laser_core.importers.checkpoint_reader`. The loss's weights
(LPIPS, discriminator) are ignored and listed in imported.json.

``VQModel``'s codebook maps onto ``vq``; ``GumbelVQ``'s ``GumbelQuantize`` (a 1x1 convolution
to logits, an embedding of codes) onto ``gumbel``, whose parameters have the same form; where
the two behave differently (eval codes, the temperature schedule) is written in the run's notes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from laser_core.errors import LaserError
from laser_core.importers.checkpoint_reader import read_state_dict
from laser_core.importers.run_writer import ImportedModel
from laser_core.plugin.contracts import BuildContext

VQ_TARGET = "taming.models.vqgan.VQModel"
GUMBEL_TARGET = "taming.models.vqgan.GumbelVQ"
SUPPORTED_TARGETS = (VQ_TARGET, GUMBEL_TARGET)
ARCHITECTURE_KEYS = ("ch", "ch_mult", "num_res_blocks", "attn_resolutions", "dropout", "z_channels")
QUANTIZE_KEYS = {
    VQ_TARGET: {"quantize.embedding.weight": "bottleneck.codebook.weight"},
    GUMBEL_TARGET: {
        "quantize.proj.weight": "bottleneck.projection.weight",
        "quantize.proj.bias": "bottleneck.projection.bias",
        "quantize.embed.weight": "bottleneck.codebook",
    },
}
"""The quantizer's keys of each model class and LASER's keys for them."""

COSINE_SCHEDULER = "taming.lr_scheduler.LambdaWarmUpCosineScheduler"
GUMBEL_KL_WEIGHT = 1e-8
"""GumbelVQ's default kl_weight, for configs that leave it out."""

GUMBEL_NOTES = [
    "GumbelQuantize maps onto gumbel: quantize.proj (1x1 convolution to logits) onto "
    "bottleneck.projection, quantize.embed onto bottleneck.codebook.",
    "Training has taming's form: a hard (straight-through) gumbel-softmax of the logits at "
    "temperature tau, and kl_weight times KL(softmax(logits) || uniform), which taming computes "
    "with 1e-10 added inside the log.",
    "Eval and encode differ: taming draws Gumbel noise in eval too, so its codes are samples from "
    "softmax(logits); gumbel takes the argmax of the logits, which is taming's code with the "
    "noise removed. Reconstructions equal taming's forward pass without the noise.",
]


def read_taming(checkpoint: Path, config: Path) -> ImportedModel:
    target, params = _model_params(config)
    ddconfig = params["ddconfig"]
    architecture = {key: ddconfig[key] for key in ARCHITECTURE_KEYS if key in ddconfig}
    if ddconfig.get("double_z", False):
        raise LaserError(f"{config}: ddconfig.double_z is true, which a VQModel does not use")
    if target == GUMBEL_TARGET:
        bottleneck, notes = _gumbel_bottleneck(params, config)
    else:
        bottleneck, notes = _vq_bottleneck(params), []
    blocks = {
        "encoder": {"name": "laser:vqgan", **architecture, "latent_dim": params["embed_dim"]},
        "bottleneck": bottleneck,
        "decoder": {"name": "laser:vqgan", **architecture},
    }
    weights, ignored = _rename(read_state_dict(checkpoint), checkpoint, QUANTIZE_KEYS[target])
    metadata = {"class": target.rsplit(".", 1)[1]}
    images = BuildContext(
        image_channels=int(ddconfig.get("in_channels", 3)),
        image_size=int(ddconfig.get("resolution", 256)),
    )
    return ImportedModel(
        checkpoint, "taming-transformers", blocks, weights, images, ignored, metadata, notes
    )


def _model_params(config: Path) -> tuple[str, dict[str, Any]]:
    try:
        content = yaml.safe_load(config.read_text())
        model = content["model"]
        target, params = model["target"], model["params"]
    except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError) as error:
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
    return target, params


def _vq_bottleneck(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "laser:vq",
        "codebook_size": params["n_embed"],
        "commitment_weight": 0.25,  # taming's VectorQuantizer's fixed beta
        "update": "gradient",
        "kmeans_init": False,
        "revive_dead_codes": False,
    }


def _gumbel_bottleneck(params: dict[str, Any], config: Path) -> tuple[dict[str, Any], list[str]]:
    """``gumbel``'s block for a GumbelVQ, and the notes on what differs from taming's."""
    z_channels, embed_dim = params["ddconfig"].get("z_channels"), params["embed_dim"]
    if z_channels != embed_dim:
        raise LaserError(
            f"{config}: GumbelVQ with ddconfig.z_channels {z_channels} != embed_dim {embed_dim}; "
            "its quantize.proj takes z_channels inputs but gets quant_conv's embed_dim outputs, "
            "so only equal values describe a model that runs"
        )
    if params.get("remap") is not None:
        raise LaserError(f"{config}: model.params.remap is set; gumbel has no index remapping")
    temperature, note = _temperature(params.get("temperature_scheduler_config"), config)
    block = {
        "name": "laser:gumbel",
        "codebook_size": params["n_embed"],
        **temperature,
        "sampling": "gumbel-softmax",
        "hard": True,  # GumbelQuantize's straight_through, which GumbelVQ leaves at True
        "kl_weight": params.get("kl_weight", GUMBEL_KL_WEIGHT),
    }
    return block, [*GUMBEL_NOTES, note]


def _temperature(scheduler: Any, config: Path) -> tuple[dict[str, Any], str]:
    """gumbel's temperature options for taming's temperature scheduler, and what differs."""
    if not isinstance(scheduler, dict) or scheduler.get("target") != COSINE_SCHEDULER:
        return {}, (
            "The temperature schedule is gumbel's default: temperature_scheduler_config is not "
            f"{COSINE_SCHEDULER}, whose endpoints the recipe could take."
        )
    try:
        schedule = scheduler["params"]
        start, end, steps = schedule["lr_max"], schedule["lr_min"], schedule["max_decay_steps"]
    except (KeyError, TypeError):
        raise LaserError(
            f"{config}: temperature_scheduler_config.params needs lr_max, lr_min and "
            "max_decay_steps, as taming's LambdaWarmUpCosineScheduler takes"
        ) from None
    endpoints = {"lr_max": start, "lr_min": end}
    for key, value in endpoints.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise LaserError(
                f"{config}: temperature_scheduler_config.params.{key} is {value!r}; gumbel "
                "needs a positive temperature (taming's configs use lr_min 1e-6 or more)"
            )
    options = {"temperature_start": start, "temperature_end": end, "anneal_steps": steps}
    return {**options, "anneal": "linear"}, (
        f"Temperature: taming anneals tau by a cosine from lr_max {start} to lr_min {end} by "
        f"step max_decay_steps {steps}, after a linear warm-up from lr_start over warm_up_steps; "
        "gumbel anneals linearly between the same endpoints over the same steps, without the "
        "warm-up, from step 0 (the checkpoint's global step is not read)."
    )


def _rename(
    state: dict[str, torch.Tensor], checkpoint: Path, quantize: dict[str, str]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """taming's keys -> LASER's: the 1x1 convolutions move into the encoder and decoder, the
    quantizer's keys are renamed by ``quantize``."""
    weights, ignored, unknown = {}, [], []
    for key, tensor in state.items():
        if key.startswith(("encoder.", "decoder.")):
            weights[key] = tensor
        elif key.startswith("quant_conv."):
            weights["encoder." + key] = tensor
        elif key.startswith("post_quant_conv."):
            weights["decoder." + key] = tensor
        elif key in quantize:
            weights[quantize[key]] = tensor
        elif key.startswith("loss."):
            ignored.append(key)
        else:
            unknown.append(key)
    if unknown:
        raise LaserError(f"{checkpoint}: keys LASER cannot map: {', '.join(sorted(unknown)[:20])}")
    return weights, ignored
