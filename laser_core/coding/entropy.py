"""Range coding of a code's symbols under the priors, with constriction's ``RangeEncoder``.

Stream order, slot by slot: the slot's quantized values (when codes have values), then its
indices (all of them, or for sparse codes only where the value is not 0, see symbols.py).
Each stream is coded under its slot's categorical, so every symbol costs about -log2 p bits.
"""

from __future__ import annotations

from collections.abc import Iterator

import constriction
import numpy as np
import torch

from laser_core.coding.priors import Priors
from laser_core.coding.symbols import Symbols
from laser_core.errors import LaserError

# constriction is one compiled module: its submodules are attributes, not importable paths.
Categorical = constriction.stream.model.Categorical
RangeEncoder = constriction.stream.queue.RangeEncoder
RangeDecoder = constriction.stream.queue.RangeDecoder


def to_payload(encoder: RangeEncoder) -> bytes:
    """What ``encoder`` wrote, as little-endian 32-bit words."""
    return encoder.get_compressed().astype("<u4").tobytes()


def payload_decoder(payload: bytes) -> RangeDecoder:
    """A decoder of a payload ``to_payload`` wrote; a torn one is an error."""
    if len(payload) % 4:
        raise LaserError("the payload is not a whole number of 32-bit words")
    return RangeDecoder(np.frombuffer(payload, dtype="<u4").astype(np.uint32))


class EntropyCoder:
    """The priors as constriction categoricals, built once and used for many images."""

    def __init__(self, priors: Priors):
        self.priors = priors
        self.index_models = [
            Categorical(priors.index_probabilities(s), perfect=False)
            for s in range(len(priors.index_counts))
        ]
        self.value_models = [
            Categorical(priors.value_probabilities(s), perfect=False)
            for s in range(len(priors.value_counts))
        ]

    def encode(self, symbols: Symbols) -> bytes:
        """The range-coded payload of ``symbols``, as little-endian 32-bit words."""
        encoder = RangeEncoder()
        for stream, model, _ in self._streams(symbols):
            encoder.encode(stream.numpy().astype(np.int32), model)
        return to_payload(encoder)

    def cross_entropy_bits(self, symbols: Symbols) -> float:
        """Σ -log2 p(symbol) under the priors: the rate an ideal coder would reach."""
        return sum(
            float(-np.log2(probabilities[stream.numpy()]).sum())
            for stream, _, probabilities in self._streams(symbols)
        )

    def _streams(self, symbols: Symbols) -> Iterator[tuple[torch.Tensor, Categorical, np.ndarray]]:
        """(symbols, model, probabilities) of every stream, in coding order."""
        self._check_depth(symbols.depth)
        for slot in range(symbols.depth):
            if symbols.values is not None:
                yield (
                    symbols.values[:, slot],
                    self.value_models[slot],
                    self.priors.value_probabilities(slot),
                )
            if symbols.indices is not None:
                yield (
                    symbols.coded_indices(slot),
                    self.index_models[slot],
                    self.priors.index_probabilities(slot),
                )

    def decode(self, payload: bytes, positions: int) -> Symbols:
        """Symbols of ``positions`` latent positions from a payload ``encode`` wrote."""
        decoder = payload_decoder(payload)
        depth = self.priors.depth
        has_values, has_indices = bool(self.value_models), bool(self.index_models)
        values = torch.zeros(positions, depth, dtype=torch.long) if has_values else None
        indices = torch.zeros(positions, depth, dtype=torch.long) if has_indices else None
        zero = self.priors.quantizer.zero_symbol if has_values else 0
        try:
            for slot in range(depth):
                coded = torch.ones(positions, dtype=torch.bool)
                if values is not None:
                    decoded = decoder.decode(self.value_models[slot], positions)
                    values[:, slot] = torch.from_numpy(decoded.astype(np.int64))
                    coded = values[:, slot] != zero
                if indices is not None:
                    decoded = decoder.decode(self.index_models[slot], int(coded.sum()))
                    indices[coded, slot] = torch.from_numpy(decoded.astype(np.int64))
        except (AssertionError, ValueError, RuntimeError) as error:
            raise LaserError(f"the payload does not decode under these priors ({error})") from None
        return Symbols(indices, values, zero)

    def _check_depth(self, depth: int) -> None:
        if depth != self.priors.depth:
            raise LaserError(
                f"codes have depth {depth} but the priors were counted for depth "
                f"{self.priors.depth}; rebuild them with `laser priors RUN_DIR`"
            )
