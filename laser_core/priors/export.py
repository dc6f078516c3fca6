"""A run's codes as prior tokens, exported once into ``RUN_DIR/priors/codes.safetensors``.

Tokens are made exactly as ``laser compress`` makes them: the run's model encodes each image
(one tile: training images are the tile size) and its value quantizer (priors.safetensors,
counted first when missing) turns values into symbols. The file records the model's and the
quantizer's identities and is made again when either changed.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import torch
from safetensors.torch import load, save
from torch.utils.data import DataLoader, Dataset, Subset

from laser_core.coding.codec import Codec
from laser_core.coding.symbols import to_symbols
from laser_core.coding.tokens import symbol_spec, to_tokens
from laser_core.coding.trained_priors import PRIORS_DIR
from laser_core.files import atomic_write
from laser_core.plugin.priors import SymbolSpec

CODES_FILE = "codes.safetensors"
MAX_TRAIN_IMAGES = 50_000
"""Training images encoded at most (a fixed random subset beyond that)."""


@dataclass
class Tokens:
    """One split's tokens long (images, tokens) and labels long (images,) or None."""

    tokens: torch.Tensor
    labels: torch.Tensor | None

    def __len__(self) -> int:
        return self.tokens.shape[0]


@dataclass
class ExportedTokens:
    """A run's tokens: their spec, the splits, and the pixels one tile of tokens covers."""

    spec: SymbolSpec
    train: Tokens
    val: Tokens
    pixels_per_tile: int


def export_tokens(codec: Codec) -> ExportedTokens:
    """The run's tokens, read from priors/codes.safetensors when it was made by this model
    and quantizer, else encoded now and written there."""
    path = codec.run.run_dir / PRIORS_DIR / CODES_FILE
    stamp = {"model": codec.priors.model_id.hex(), "quantizer": codec.priors.identity.hex()}
    if path.is_file():
        found = _read(path.read_bytes())
        if found is not None and all(found[0].get(k) == v for k, v in stamp.items()):
            return found[1]
    exported = _encode(codec)
    tensors = {"train": exported.train.tokens, "val": exported.val.tokens}
    for split in ("train", "val"):
        labels = getattr(exported, split).labels
        if labels is not None:
            tensors[f"{split}_labels"] = labels
    metadata = stamp | {
        "symbols": json.dumps(exported.spec.to_dict()),
        "pixels_per_tile": str(exported.pixels_per_tile),
    }
    data = save({k: v.contiguous() for k, v in tensors.items()}, metadata)
    atomic_write(path, lambda temporary: temporary.write_bytes(data))
    return exported


def _read(data: bytes) -> tuple[dict[str, str], ExportedTokens] | None:
    try:
        tensors = load(data)
        (length,) = struct.unpack_from("<Q", data)
        metadata = json.loads(data[8 : 8 + length])["__metadata__"]
        spec = SymbolSpec.from_dict(json.loads(metadata["symbols"]))
        splits = {
            split: Tokens(tensors[split], tensors.get(f"{split}_labels"))
            for split in ("train", "val")
        }
        return metadata, ExportedTokens(
            spec, splits["train"], splits["val"], int(metadata["pixels_per_tile"])
        )
    except Exception:  # a damaged or older file is simply made again
        return None


def _encode(codec: Codec) -> ExportedTokens:
    data = codec.run.data
    train = data.train
    if len(train) > MAX_TRAIN_IMAGES:
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
        train = Subset(train, order[:MAX_TRAIN_IMAGES].tolist())
    spec = None
    splits = {}
    for split, dataset in (("train", train), ("val", data.val)):
        tokens, labels, spec = _encode_split(codec, dataset, data.num_classes)
        splits[split] = Tokens(tokens, labels)
    pixels = codec.tile**2
    return ExportedTokens(spec, splits["train"], splits["val"], pixels)


@torch.no_grad()
def _encode_split(
    codec: Codec, dataset: Dataset, num_classes: int | None
) -> tuple[torch.Tensor, torch.Tensor | None, SymbolSpec]:
    model = codec.model
    parts, labels, spec = [], [], None
    for batch in DataLoader(dataset, batch_size=64):
        codes = model.bottleneck.encode(model.encoder(batch["image"]))
        present = codes.indices if codes.indices is not None else codes.values
        if spec is None:
            grid = (present.shape[1], present.shape[2])
            code_spec = model.bottleneck.code_spec()
            spec = symbol_spec(
                code_spec, codec.priors.quantizer, grid, present.shape[3], num_classes
            )
        parts.append(to_tokens(to_symbols(codes, codec.priors.quantizer), spec))
        if num_classes is not None:
            labels.append(torch.as_tensor(batch["label"]).long())
    return torch.cat(parts), torch.cat(labels) if labels else None, spec
