"""Entropy models learnt from a run's training set, stored as ``RUN_DIR/priors.safetensors``.

One categorical per depth slot for the indices (the VQ codebook, each RQ level, each OMP rank's
atom ids) and one per depth slot for the quantized values (each OMP rank's coefficients, each
Gaussian mean channel), with the step of each slot's value quantizer. The file keeps counts,
not probabilities, so every reader rebuilds exactly the same models; its metadata names the
model it was counted for, so priors of other weights are refused. ``laser priors RUN_DIR``
(re)builds it; ``laser compress`` builds it with the defaults when it is missing.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load, save
from torch.utils.data import DataLoader, Subset

from laser_core.coding import DEFAULT_BITS, DEFAULT_MAX_IMAGES
from laser_core.coding.identity import digest
from laser_core.coding.quantize import ValueQuantizer
from laser_core.coding.symbols import Symbols, concatenate, to_symbols
from laser_core.errors import LaserError
from laser_core.files import atomic_write
from laser_core.ops.counts import count_probabilities, symbol_counts
from laser_core.plugin.contracts import Codes
from laser_core.rundir.layout import RunDir
from laser_core.runs.load import TrainedRun


@dataclass
class Priors:
    """Counts of coded symbols per depth slot: index_counts (alphabet,) for codes with indices,
    value_counts (2**bits,) and ``quantizer`` for codes with values; empty lists otherwise.
    ``identity`` is the digest of the stored file, which a bitstream records."""

    index_counts: list[torch.Tensor]
    value_counts: list[torch.Tensor]
    quantizer: ValueQuantizer | None
    images: int
    model_id: bytes
    identity: bytes

    @property
    def depth(self) -> int:
        return max(len(self.index_counts), len(self.value_counts))

    def index_probabilities(self, slot: int) -> np.ndarray:
        return count_probabilities(self.index_counts[slot]).numpy()

    def value_probabilities(self, slot: int) -> np.ndarray:
        return count_probabilities(self.value_counts[slot]).numpy()


def build_priors(
    run: TrainedRun,
    model_id: bytes,
    bits: int = DEFAULT_BITS,
    max_images: int = DEFAULT_MAX_IMAGES,
) -> Priors:
    """Count the codes of up to ``max_images`` training images (a fixed random subset) and
    write them to RUN_DIR/priors.safetensors. ``bits`` per value, for codes with values."""
    codes, images = training_codes(run, max_images)
    quantizer = None if codes.values is None else ValueQuantizer.fit(codes.values, bits)
    alphabet_sizes = run.model.bottleneck.code_spec().alphabet_sizes
    data = count_symbols(to_symbols(codes, quantizer), alphabet_sizes, quantizer, images, model_id)
    path = RunDir(run.run_dir).priors_safetensors
    atomic_write(path, lambda temporary: temporary.write_bytes(data))
    return parse_priors(data, str(path), model_id)


@torch.no_grad()
def training_codes(run: TrainedRun, max_images: int) -> tuple[Codes, int]:
    """Codes (positions, depth) of up to ``max_images`` training images, and how many."""
    train = run.data.train
    count = min(len(train), max_images)
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:count]
    model = run.model.eval()
    parts = []
    for batch in DataLoader(Subset(train, order.tolist()), batch_size=64):
        codes = model.bottleneck.encode(model.encoder(batch["image"]))
        parts.append(codes.map(lambda t: t.reshape(-1, t.shape[-1])))
    return concatenate(parts), count


def count_symbols(
    symbols: Symbols,
    alphabet_sizes: list[int],
    quantizer: ValueQuantizer | None,
    images: int,
    model_id: bytes,
) -> bytes:
    """The priors file's content: counts of the symbols the coder will code, per slot."""
    tensors: dict[str, torch.Tensor] = {}
    if symbols.indices is not None:
        for slot, size in enumerate(alphabet_sizes):
            tensors[f"index_counts.{slot}"] = symbol_counts(symbols.coded_indices(slot), size)
    if symbols.values is not None:
        for slot in range(symbols.depth):
            counts = symbol_counts(symbols.values[:, slot], quantizer.alphabet_size)
            tensors[f"value_counts.{slot}"] = counts
        tensors["value_steps"] = quantizer.steps
    bits = quantizer.bits if quantizer else 0
    return save(tensors, {"bits": str(bits), "images": str(images), "model": model_id.hex()})


def load_priors(run_dir: Path, model_id: bytes) -> Priors:
    """The priors stored in ``run_dir``; refused when counted for another model."""
    path = RunDir(run_dir).priors_safetensors
    if not path.is_file():
        raise LaserError(
            f"{run_dir} has no {RunDir.PRIORS}; count them with `laser priors {run_dir}`"
        )
    return parse_priors(path.read_bytes(), str(path), model_id)


def parse_priors(data: bytes, source: str, model_id: bytes) -> Priors:
    """Priors from a priors file's content; ``source`` names it in errors."""
    try:
        tensors = load(data)
        (header_length,) = struct.unpack_from("<Q", data)  # safetensors: u64 length, JSON
        metadata = json.loads(data[8 : 8 + header_length])["__metadata__"]
    except (SafetensorError, struct.error, ValueError, KeyError) as error:
        raise LaserError(
            f"cannot read the priors {source} ({error}); rebuild them with `laser priors RUN_DIR`"
        ) from None
    if metadata.get("model") != model_id.hex():
        raise LaserError(
            f"{source} was counted for another model (weights or recipe changed since); "
            f"rebuild it with `laser priors RUN_DIR`"
        )
    bits = int(metadata["bits"])
    return Priors(
        index_counts=_slots(tensors, "index_counts"),
        value_counts=_slots(tensors, "value_counts"),
        quantizer=ValueQuantizer(bits, tensors["value_steps"]) if bits else None,
        images=int(metadata["images"]),
        model_id=model_id,
        identity=digest(data),
    )


def _slots(tensors: dict[str, torch.Tensor], name: str) -> list[torch.Tensor]:
    """tensors[name.0], tensors[name.1], ... for as many slots as are stored."""
    found: list[torch.Tensor] = []
    while f"{name}.{len(found)}" in tensors:
        found.append(tensors[f"{name}.{len(found)}"])
    return found
