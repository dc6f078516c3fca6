"""``counts``: one categorical per field, counted on the training codes.

Ignores every dependency between positions and fields: the baseline every learned prior is
measured against. Counted and smoothed by the same rule (``laser_core.ops``) as the counts
``laser priors`` stores for the default codec.
"""

from __future__ import annotations

import torch

import laser_core
from laser_core.ops import count_probabilities, symbol_counts


class CountsConfig(laser_core.ComponentConfig):
    """No keys: the counts are the model."""


class CountsPrior(laser_core.Prior):
    """Independent categoricals per field: counts (fields, largest_alphabet) int64."""

    def __init__(self, spec: laser_core.SymbolSpec):
        super().__init__()
        self.spec = spec
        self.register_buffer(
            "counts", torch.zeros(spec.fields, spec.largest_alphabet, dtype=torch.long)
        )
        sizes = torch.tensor(spec.alphabet_sizes)
        self.register_buffer("inside", torch.arange(spec.largest_alphabet) < sizes[:, None])

    def fit(self, tokens: torch.Tensor, labels: torch.Tensor | None) -> bool:
        per_field = tokens.reshape(-1, self.spec.positions, self.spec.fields)
        coded = self.spec.coded(tokens).reshape(per_field.shape)
        for field in range(self.spec.fields):
            symbols = per_field[..., field][coded[..., field]]
            self.counts[field] = symbol_counts(symbols, self.spec.largest_alphabet)
        return True

    def log_probs(self, tokens: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        per_field = torch.full(self.counts.shape, -torch.inf, device=tokens.device)
        for field, inside in enumerate(self.inside):
            probabilities = count_probabilities(self.counts[field, inside])
            per_field[field, inside] = probabilities.log().float().to(tokens.device)
        fields = torch.arange(tokens.shape[1], device=tokens.device) % self.spec.fields
        return per_field[fields].expand(tokens.shape[0], -1, -1)


def build(config: CountsConfig, context: laser_core.BuildContext) -> CountsPrior:
    if context.symbols is None:
        raise laser_core.LaserError("the counts prior is built for a run's codes (no symbols)")
    return CountsPrior(context.symbols)


@laser_core.hookimpl
def laser_register_priors(register: laser_core.Register) -> None:
    register("counts", build, config=CountsConfig, summary="independent per-field categoricals")
