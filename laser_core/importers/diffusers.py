"""``laser import diffusers FOLDER``: diffusers' ``VQModel`` and ``AutoencoderKL`` folders
(``config.json`` and the safetensors file ``save_pretrained`` writes).

Both share taming's encoder and decoder, under other names: ``down_blocks.i.resnets.j`` is
``down.i.block.j``, attention projections are linear layers rather than 1x1 convolutions, and
``up_blocks`` run from the lowest resolution up where taming's ``up`` is indexed by level.
``AutoencoderKL``'s encoder emits means and log-variances side by side; they map onto the
``gaussian`` bottleneck with ``projection: false``, which hands the decoder half the channels.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from laser_core.errors import LaserError
from laser_core.importers.run_writer import ImportedModel
from laser_core.plugin.contracts import BuildContext

WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "model.safetensors")
ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def read_diffusers(folder: Path) -> ImportedModel:
    config = _read_config(folder)
    kind = config.get("_class_name")
    if kind not in ("VQModel", "AutoencoderKL"):
        raise LaserError(
            f"{folder}/config.json: _class_name {kind!r}; LASER imports VQModel and AutoencoderKL"
        )
    architecture = _architecture(config, folder)
    latent = config.get("latent_channels", 3)
    kl = kind == "AutoencoderKL"
    if kl and not (config.get("use_quant_conv", True) and config.get("use_post_quant_conv", True)):
        raise LaserError(f"{folder}: AutoencoderKL without quant_conv is not supported")
    blocks: dict[str, Any] = {
        "encoder": {
            "name": "laser:vqgan",
            **architecture,
            "double_z": kl,
            "latent_dim": 2 * latent if kl else config.get("vq_embed_dim") or latent,
        },
        "bottleneck": (
            {"name": "laser:gaussian", "projection": False, "kl_weight": 1e-6}
            if kl
            else {
                "name": "laser:vq",
                "codebook_size": config.get("num_vq_embeddings", 256),
                "commitment_weight": 0.25,
                "update": "gradient",
                "kmeans_init": False,
                "revive_dead_codes": False,
            }
        ),
        "decoder": {"name": "laser:vqgan", **architecture},
    }
    levels = len(config["block_out_channels"])
    weights = {}
    for key, tensor in _read_weights(folder).items():
        target = _rename(key, levels)
        if target is None:
            raise LaserError(f"{folder}: weight {key} has no counterpart in LASER's vqgan model")
        weights[target] = tensor.reshape(*tensor.shape, 1, 1) if _is_linear(key) else tensor
    metadata = {"class": kind, "scaling_factor": config.get("scaling_factor")}
    images = BuildContext(
        image_channels=int(config.get("in_channels", 3)),
        image_size=int(config.get("sample_size", 256)),
    )
    return ImportedModel(folder, f"diffusers {kind}", blocks, weights, images, [], metadata)


def _read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise LaserError(f"{path}: cannot read the model's config ({error})") from None


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            try:
                return load_file(str(folder / name))
            except Exception as error:  # safetensors raises its own error types
                raise LaserError(f"{folder / name}: unreadable safetensors ({error})") from None
    raise LaserError(
        f"{folder} holds none of {', '.join(WEIGHT_FILES)}; save the model with "
        "save_pretrained(safe_serialization=True)"
    )


def _architecture(config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """taming's ddconfig keys for diffusers' encoder/decoder settings; refuses what taming's
    architecture cannot express."""
    widths = list(config["block_out_channels"])
    ch = widths[0]
    problems = []
    if any(w % ch for w in widths):
        problems.append(f"block_out_channels {widths} are not multiples of the first")
    if config.get("norm_num_groups", 32) != 32 or config.get("act_fn", "silu") != "silu":
        problems.append("LASER's vqgan uses GroupNorm(32) and SiLU")
    if (
        not config.get("mid_block_add_attention", True)
        or config.get("norm_type", "group") != "group"
    ):
        problems.append("the middle block must have attention and group norms")
    size, levels = int(config.get("sample_size", 256)), len(widths)
    down = config.get("down_block_types", ["DownEncoderBlock2D"] * levels)
    up = config.get("up_block_types", ["UpDecoderBlock2D"] * levels)
    attn_down = {size // 2**i for i, kind in enumerate(down) if kind.startswith("Attn")}
    attn_up = {
        size // 2 ** (levels - 1 - k) for k, kind in enumerate(up) if kind.startswith("Attn")
    }
    if attn_down != attn_up:
        problems.append(f"attention at {sorted(attn_down)} down but {sorted(attn_up)} up")
    if problems:
        raise LaserError(f"{folder}/config.json: " + "; ".join(problems))
    return {
        "ch": ch,
        "ch_mult": [w // ch for w in widths],
        "num_res_blocks": config.get("layers_per_block", 1),
        "attn_resolutions": sorted(attn_down),
        "z_channels": config.get("latent_channels", 3),
    }


def _is_linear(key: str) -> bool:
    return bool(re.search(r"attentions\.\d+\.(to_q|to_k|to_v|to_out\.0)\.weight$", key))


def _rename(key: str, levels: int) -> str | None:
    """diffusers' key -> LASER's vqgan key, or None for a key LASER has no place for."""
    top = {"quant_conv.": "encoder.quant_conv.", "post_quant_conv.": "decoder.post_quant_conv."}
    for prefix, target in top.items():
        if key.startswith(prefix):
            return target + key[len(prefix) :]
    if key == "quantize.embedding.weight":
        return "bottleneck.codebook.weight"
    match = re.match(r"(encoder|decoder)\.(.+)$", key)
    if not match:
        return None
    part, rest = match.groups()
    rest = rest.replace("conv_norm_out.", "norm_out.").replace(
        "mid_block.resnets.0.", "mid.block_1."
    )
    rest = rest.replace("mid_block.resnets.1.", "mid.block_2.")
    rest = re.sub(r"^mid_block\.attentions\.0\.", "mid.attn_1.", rest)
    level = re.match(r"(down|up)_blocks\.(\d+)\.(.+)$", rest)
    if level:
        direction, index, inner = level.groups()
        index = int(index) if direction == "down" else levels - 1 - int(index)
        inner = re.sub(r"^resnets\.(\d+)\.", r"block.\1.", inner)
        inner = re.sub(r"^attentions\.(\d+)\.", r"attn.\1.", inner)
        inner = inner.replace("downsamplers.0.", "downsample.").replace(
            "upsamplers.0.", "upsample."
        )
        rest = f"{direction}.{index}.{inner}"
    rest = rest.replace(".conv_shortcut.", ".nin_shortcut.")
    for theirs, ours in ATTENTION.items():
        rest = re.sub(rf"(attn(?:_1|\.\d+))\.{re.escape(theirs)}\.", rf"\1.{ours}.", rest)
    return f"{part}.{rest}"
