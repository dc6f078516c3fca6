"""A code's symbols as the token sequences a prior models (laser_core.plugin.priors), and back.

A tile's tokens run over its latent positions in raster order and, at each position, slot by
slot: the slot's quantized value (codes with values), then its index (codes with indices), the
order the counts priors have always coded a slot in.
"""

from __future__ import annotations

import torch

from laser_core.coding.quantize import ValueQuantizer
from laser_core.coding.symbols import Symbols
from laser_core.plugin.contracts import CodeSpec
from laser_core.plugin.priors import SymbolSpec


def symbol_spec(
    code_spec: CodeSpec,
    quantizer: ValueQuantizer | None,
    grid: tuple[int, int],
    depth: int,
    num_classes: int | None,
) -> SymbolSpec:
    """The tokens of one tile of ``grid`` (height, width) positions with ``depth`` slots."""
    kinds, slots, sizes = [], [], []
    for slot in range(depth):
        if code_spec.has_values:
            kinds.append("value")
            slots.append(slot)
            sizes.append(quantizer.alphabet_size)
        if code_spec.alphabet_sizes:
            kinds.append("index")
            slots.append(slot)
            sizes.append(code_spec.alphabet_sizes[slot])
    zero = quantizer.zero_symbol if code_spec.has_values else None
    return SymbolSpec(tuple(grid), tuple(kinds), tuple(slots), tuple(sizes), zero, num_classes)


def to_tokens(symbols: Symbols, spec: SymbolSpec) -> torch.Tensor:
    """Tokens long (tiles, tokens) of symbols (tiles x positions, depth), tile after tile."""
    columns = []
    for kind, slot in zip(spec.kinds, spec.slots, strict=True):
        source = symbols.values if kind == "value" else symbols.indices
        columns.append(source[:, slot])
    return torch.stack(columns, -1).reshape(-1, spec.tokens)


def from_tokens(tokens: torch.Tensor, spec: SymbolSpec) -> Symbols:
    """Symbols (tiles x positions, depth) of tokens (tiles, tokens)."""
    per_field = tokens.reshape(-1, spec.fields)
    depth = max(spec.slots) + 1
    parts: dict[str, torch.Tensor] = {}
    for field, (kind, slot) in enumerate(zip(spec.kinds, spec.slots, strict=True)):
        parts.setdefault(kind, torch.zeros(per_field.shape[0], depth, dtype=torch.long))
        parts[kind][:, slot] = per_field[:, field]
    return Symbols(parts.get("index"), parts.get("value"), spec.zero_value or 0)
