"""Range coding of tokens under a trained prior, with constriction's ``RangeEncoder``.

The tiles of every image of a file are coded as one batch into one stream, token after token
(Prior.coding_steps): a 32-bit word of padding per file, not per image. Frequencies are
integers (laser_core.ops.frequencies), handed to constriction as exact multiples of
2**-PRECISION. The prior's floating-point outputs decide them, so a file decodes bit-exactly
with the same prior on the same machine and software (any process count); on other hardware
or another torch build the outputs may round differently and such a file may not decode.
"""

from __future__ import annotations

import numpy as np
import torch

from laser_core.coding.entropy import Categorical, RangeEncoder, payload_decoder, to_payload
from laser_core.coding.trained_priors import TrainedPrior
from laser_core.errors import LaserError
from laser_core.ops.frequencies import exact_probabilities, frequency_bits


class PriorCoder:
    """Codes tokens (tiles, tokens) of the prior's spec into one stream and back."""

    def __init__(self, trained: TrainedPrior):
        self.trained = trained
        self.model = Categorical(perfect=False)

    def encode(self, tokens: torch.Tensor) -> tuple[bytes, float]:
        """The stream of tokens (tiles, tokens), as little-endian 32-bit words, and the bits
        Σ -log2(frequency / 2**PRECISION) an ideal coder would spend on them."""
        encoder = RangeEncoder()
        bits = 0.0
        for step in self.trained.prior.coding_steps(tokens):
            if not step.frequencies.shape[0]:
                continue
            symbols = tokens[step.where.cpu(), step.token].cpu()
            probabilities = exact_probabilities(step.frequencies)
            encoder.encode(symbols.numpy().astype(np.int32), self.model, probabilities)
            bits += float(frequency_bits(step.frequencies, symbols).sum())
        return to_payload(encoder), bits

    def decode(self, stream: bytes, tiles: int) -> torch.Tensor:
        """Tokens long (tiles, tokens) from a stream ``encode`` wrote."""
        decoder = payload_decoder(stream)
        tokens = torch.zeros(tiles, self.trained.spec.tokens, dtype=torch.long)
        try:
            for step in self.trained.prior.coding_steps(tokens):
                if not step.frequencies.shape[0]:
                    continue
                decoded = decoder.decode(self.model, exact_probabilities(step.frequencies))
                tokens[step.where.cpu(), step.token] = torch.from_numpy(decoded.astype(np.int64))
        except (AssertionError, ValueError, RuntimeError) as error:
            raise LaserError(f"the payload does not decode under this prior ({error})") from None
        return tokens
