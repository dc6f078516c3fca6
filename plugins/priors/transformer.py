"""``transformer``: an autoregressive transformer over a tile's tokens in raster order.

One token per (latent position, field): a VQ code has one field per position, an RQ code one
per level, a sparse code a value and an atom id per slot, FSQ one per dimension; the
transformer reads every earlier token of the tile, so it models dependencies between
positions and between the fields of one position alike. A start token carries the class for
class-conditional priors (the extra class ``num_classes`` means "unconditional", used for
coding and trained by dropping labels at random).

Built from torch's own ``nn.TransformerEncoder`` with a causal mask: a decoder-only model of a
few layers needs nothing more, and torch's layers use its fused attention on GPUs; a library
(x-transformers) would be one more dependency for features these sizes do not use.
"""

from __future__ import annotations

import math

import torch
from torch import nn

import laser_core


class TransformerConfig(laser_core.ComponentConfig):
    dim: laser_core.PositiveInt = 128
    layers: laser_core.PositiveInt = 4
    heads: laser_core.PositiveInt = 4
    dropout: laser_core.UnitInterval = 0.1
    class_dropout: laser_core.UnitInterval = 0.1
    """How often training replaces a label by "unconditional", so both are learned."""


class TransformerPrior(laser_core.Prior):
    def __init__(self, config: TransformerConfig, spec: laser_core.SymbolSpec):
        super().__init__()
        if config.dim % config.heads:
            raise laser_core.LaserError(
                f"transformer prior: dim {config.dim} is not a multiple of heads {config.heads}"
            )
        self.spec, self.config = spec, config
        self.conditional = spec.num_classes is not None
        sizes = torch.tensor(spec.alphabet_sizes)
        offsets = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)[:-1]])
        fields = spec.token_fields()
        columns = torch.arange(spec.largest_alphabet)
        # each token's symbols as columns of one shared vocabulary; padding past the alphabet
        self.register_buffer("token_offsets", offsets[fields], persistent=False)
        vocabulary = int(sizes.sum())
        within = (offsets[fields, None] + columns).clamp(max=vocabulary - 1)
        self.register_buffer("columns", within, persistent=False)
        self.register_buffer("outside", columns >= sizes[fields, None], persistent=False)
        self.symbols = nn.Embedding(vocabulary, config.dim)
        self.places = nn.Embedding(spec.tokens, config.dim)
        self.start = nn.Embedding((spec.num_classes or 0) + 1, config.dim)
        layer = nn.TransformerEncoderLayer(
            config.dim,
            config.heads,
            4 * config.dim,
            config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, vocabulary)

    def log_probs(self, tokens: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        batch, length = tokens.shape
        unconditional = self.start.num_embeddings - 1
        if labels is None or not self.conditional:
            labels = torch.full((batch,), unconditional, device=tokens.device)
        elif self.training and self.config.class_dropout:
            dropped = torch.rand(batch, device=tokens.device) < self.config.class_dropout
            labels = labels.masked_fill(dropped, unconditional)
        # token t is predicted from the start token and tokens 0..t-1: shift right by one
        previous = self.symbols(tokens[:, : length - 1] + self.token_offsets[: length - 1])
        inputs = torch.cat([self.start(labels)[:, None], previous], 1)
        inputs = inputs + self.places.weight[:length]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device)
        hidden = self.norm(self.blocks(inputs, mask=mask, is_causal=True))
        logits = self.head(hidden).float()
        per_token = logits.gather(-1, self.columns[:length].expand(batch, -1, -1))
        per_token = per_token.masked_fill(self.outside[:length], -math.inf)
        return per_token.log_softmax(-1)


def build(config: TransformerConfig, context: laser_core.BuildContext) -> TransformerPrior:
    if context.symbols is None:
        raise laser_core.LaserError("the transformer prior is built for a run's codes")
    return TransformerPrior(config, context.symbols)


@laser_core.hookimpl
def laser_register_priors(register: laser_core.Register) -> None:
    register(
        "transformer",
        build,
        config=TransformerConfig,
        summary="autoregressive transformer over positions and fields, class-conditional",
    )
