"""The prior contract: a probability model of a run's codes, for bits, coding and sampling.

A prior sees a tile's code as a sequence of integer tokens: latent positions in raster order
and, at each position, its fields, slot by slot (a slot's quantized value, then its index).
A plugin implements one method, :meth:`Prior.log_probs`: each token's distribution given the
tokens before it. From it this base class derives, once for every prior, the bits of a code
(:meth:`Prior.log_prob`), the integer frequencies an entropy coder consumes in a fixed order
(:meth:`Prior.coding_steps`) and samples (:meth:`Prior.sample`).

Sparse codes (a slot with both a value and an index): once the value is the symbol of 0 the
index carries nothing; it is 0, costs no bits and is never coded or sampled.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from laser_core.ops.frequencies import to_frequencies

Kind = str
"""A field's kind: ``"value"`` (a quantized code value) or ``"index"`` (a code or atom id)."""


@dataclass(frozen=True)
class SymbolSpec:
    """The tokens of one tile's code: ``grid`` (height, width) latent positions, each with the
    fields ``kinds`` of depth slots ``slots``, of ``alphabet_sizes`` symbols each.

    ``zero_value`` is the value symbol of 0 when codes carry values (an index whose value is
    that symbol is not coded); ``num_classes`` is the dataset's, None when unlabelled."""

    grid: tuple[int, int]
    kinds: tuple[Kind, ...]
    slots: tuple[int, ...]
    alphabet_sizes: tuple[int, ...]
    zero_value: int | None = None
    num_classes: int | None = None

    @property
    def positions(self) -> int:
        return self.grid[0] * self.grid[1]

    @property
    def fields(self) -> int:
        return len(self.kinds)

    @property
    def tokens(self) -> int:
        """Tokens per tile: positions x fields."""
        return self.positions * self.fields

    @property
    def largest_alphabet(self) -> int:
        return max(self.alphabet_sizes)

    def field_of(self, token: int) -> int:
        return token % self.fields

    def token_fields(self) -> torch.Tensor:
        """The field of every token, long (tokens,)."""
        return torch.arange(self.tokens) % self.fields

    def pixels_per_tile(self, downsampling: int) -> int:
        return self.positions * downsampling**2

    def coded(self, tokens: torch.Tensor) -> torch.Tensor:
        """Which tokens (batch, tokens) an entropy coder codes: all, but the index of a sparse
        slot whose value is the symbol of 0. bool (batch, tokens)."""
        per_field = tokens.reshape(tokens.shape[0], self.positions, self.fields)
        coded = torch.ones_like(per_field, dtype=torch.bool)
        for field in range(1, self.fields):
            if self.kinds[field] == "index" and self.kinds[field - 1] == "value":
                coded[..., field] = per_field[..., field - 1] != self.zero_value
        return coded.reshape(tokens.shape)

    def to_dict(self) -> dict:
        return {
            "grid": list(self.grid),
            "kinds": list(self.kinds),
            "slots": list(self.slots),
            "alphabet_sizes": list(self.alphabet_sizes),
            "zero_value": self.zero_value,
            "num_classes": self.num_classes,
        }

    @classmethod
    def from_dict(cls, data: dict) -> SymbolSpec:
        return cls(
            tuple(data["grid"]),
            tuple(data["kinds"]),
            tuple(data["slots"]),
            tuple(data["alphabet_sizes"]),
            data["zero_value"],
            data["num_classes"],
        )


@dataclass
class CodingStep:
    """One token of every tile being coded: the field it belongs to, ``where`` (batch,) bool
    the tiles that code it, and ``frequencies`` int64 (coded tiles, alphabet) whose rows sum
    to 2**PRECISION with every symbol at least 1."""

    token: int
    field: int
    where: torch.Tensor
    frequencies: torch.Tensor


class Prior(nn.Module):
    """A model of token sequences of one :class:`SymbolSpec`; subclasses set ``spec`` and
    implement :meth:`log_probs`, and :meth:`fit` when they are fitted in closed form."""

    spec: SymbolSpec
    conditional: bool = False
    """Whether ``labels`` change the distributions (class-conditional priors)."""

    def log_probs(self, tokens: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """Natural-log probabilities (batch, length, largest_alphabet) of each of the first
        ``length`` tokens given those before it (tokens (batch, length) long; a token's own
        value never changes its row). Columns past a field's alphabet are -inf. ``labels``
        (batch,) long, or None for the unconditional distribution."""
        raise NotImplementedError

    def fit(self, tokens: torch.Tensor, labels: torch.Tensor | None) -> bool:
        """Fit in closed form on training tokens (batch, tokens); False when the prior is
        trained by gradient descent on -log_prob instead."""
        return False

    def forward(self, tokens: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`log_prob`, so that wrappers such as DistributedDataParallel see it."""
        return self.log_prob(tokens, labels)

    def log_prob(self, tokens: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """log2 p(code) (batch,) of whole tiles' tokens (batch, tokens): minus the bits an
        ideal coder spends; uncoded tokens (see :meth:`SymbolSpec.coded`) count nothing."""
        log_probs = self.log_probs(tokens, labels)
        chosen = log_probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
        chosen = torch.where(self.spec.coded(tokens), chosen, 0.0)
        return chosen.sum(-1) / math.log(2)

    @torch.no_grad()
    def coding_steps(
        self, tokens: torch.Tensor, labels: torch.Tensor | None = None
    ) -> Iterator[CodingStep]:
        """The coder's frequencies, token after token, in raster order. ``tokens`` (batch,
        tokens) is read lazily: a decoder fills token t into it after step t, before asking
        for the next; an encoder passes the whole code. Both see exactly the same inputs."""
        fields = self.spec.token_fields()
        for token in range(self.spec.tokens):
            prefix = tokens[:, : token + 1].clone()
            prefix[:, token] = 0  # unknown to a decoder, so unseen by the encoder too
            log_probs = self.log_probs(prefix, labels)[:, token]
            field = int(fields[token])
            where = self.spec.coded(_before(tokens, token))[:, token]
            rows = log_probs[where, : self.spec.alphabet_sizes[field]]
            yield CodingStep(token, field, where, to_frequencies(rows))

    @torch.no_grad()
    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """``n`` sampled codes, tokens long (n, tokens); ``top_k`` keeps the k likeliest
        symbols of each token, ``temperature`` divides the logits."""
        device = next(iter(self.parameters()), torch.empty(0)).device
        tokens = torch.zeros(n, self.spec.tokens, dtype=torch.long, device=device)
        fields = self.spec.token_fields()
        for token in range(self.spec.tokens):
            field = int(fields[token])
            logits = self.log_probs(tokens[:, : token + 1], labels)[:, token]
            logits = logits[:, : self.spec.alphabet_sizes[field]].float() / temperature
            if top_k is not None and top_k < logits.shape[1]:
                kth = logits.topk(top_k, dim=-1).values[:, -1:]
                logits = logits.masked_fill(logits < kth, -math.inf)
            drawn = torch.multinomial(logits.softmax(-1).cpu(), 1, generator=generator)
            tokens[:, token] = drawn.squeeze(1).to(device)
            tokens[:, token] *= self.spec.coded(tokens)[:, token]
        return tokens


def _before(tokens: torch.Tensor, token: int) -> torch.Tensor:
    """``tokens`` (batch, tokens) with every token from ``token`` on set to 0: whether token t
    is coded depends only on the tokens before it."""
    known = torch.zeros_like(tokens)
    known[:, :token] = tokens[:, :token]
    return known
