"""Range coding of a whole image's code, stage by stage, under a run's stored coding tables.

The same coder as every other LASER stream (constriction's ``RangeEncoder``, entropy.py),
fed integer frequencies: each stage's symbols are grouped by the table row that codes them
(the bottleneck's ``stage_rows``, from the stages before only) and coded row after row, each
group in raster order of (channel, height, width). A decoder repeats the grouping from what it
has decoded, so it reads the symbols back in the order they were written.
"""

from __future__ import annotations

import numpy as np
import torch

from laser_core.coding.entropy import Categorical, RangeEncoder, payload_decoder, to_payload
from laser_core.errors import LaserError
from laser_core.ops.frequencies import CodingTable, chosen_bits, exact_probabilities
from laser_core.plugin.contracts import EntropyCodedBottleneck


class TableCoder:
    """Codes one image's stages with a bottleneck's row choices and the stored tables."""

    def __init__(self, bottleneck: EntropyCodedBottleneck, tables: list[CodingTable]):
        self.bottleneck, self.tables = bottleneck, tables
        # None for a row of one symbol, which is certain: a channel that training left unused
        # codes in no bits, and the decoder writes its symbol.
        self.models = [[_model(table.row(r)) for r in range(table.rows)] for table in tables]

    def clamp(
        self, stages: list[torch.Tensor], grid: tuple[int, int]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The stages (each (1, channels, height, width)) as the tables can code them, every
        symbol moved into its row's support (what the decoder will see), and the rows
        (channels, height, width) that code them."""
        clamped: list[torch.Tensor] = []
        rows: list[torch.Tensor] = []
        for stage, (symbols, table) in enumerate(zip(stages, self.tables, strict=True)):
            rows.append(self.bottleneck.stage_rows(stage, clamped, grid))
            clamped.append(table.clamp(symbols.cpu()[0], rows[-1])[None])
        return clamped, rows

    def encode(self, stages: list[torch.Tensor], rows: list[torch.Tensor]) -> tuple[bytes, float]:
        """The payload of clamped stages and their rows (see :meth:`clamp`), and the bits
        Σ -log2(frequency / 2**PRECISION) an ideal coder would spend on them."""
        encoder = RangeEncoder()
        for stage, table in enumerate(self.tables):
            order, groups = _groups(rows[stage])
            flat_rows = rows[stage].flatten()[order]
            coded = stages[stage][0].flatten()[order] - table.offsets[flat_rows]
            values, start = coded.numpy().astype(np.int32), 0
            for row, count in groups:
                if self.models[stage][row] is not None:
                    encoder.encode(values[start : start + count], self.models[stage][row])
                start += count
        return to_payload(encoder), self.bits(stages, rows)

    def bits(self, stages: list[torch.Tensor], rows: list[torch.Tensor]) -> float:
        """Σ -log2(frequency / 2**PRECISION) of clamped stages under their rows: what an
        ideal coder spends on them, without coding them."""
        total = 0.0
        for stage, table in enumerate(self.tables):
            flat_rows = rows[stage].flatten()
            coded = stages[stage][0].flatten() - table.offsets[flat_rows]
            total += float(chosen_bits(table.frequencies[flat_rows, coded]).sum())
        return total

    def decode(self, payload: bytes, grid: tuple[int, int]) -> list[torch.Tensor]:
        """The stages (each (1, channels, height, width)) of a payload ``encode`` wrote."""
        decoder = payload_decoder(payload)
        stages: list[torch.Tensor] = []
        shapes = self.bottleneck.stage_shapes(grid)
        try:
            for stage, table in enumerate(self.tables):
                rows = self.bottleneck.stage_rows(stage, stages, grid)
                order, groups = _groups(rows)
                decoded = [
                    np.zeros(count, np.int32)
                    if self.models[stage][row] is None
                    else decoder.decode(self.models[stage][row], count)
                    for row, count in groups
                ]
                in_order = torch.from_numpy(np.concatenate(decoded).astype(np.int64))
                symbols = torch.empty(rows.numel(), dtype=torch.long)
                symbols[order] = in_order + table.offsets[rows.flatten()[order]]
                stages.append(symbols.reshape(shapes[stage])[None])
        except (AssertionError, ValueError, RuntimeError) as error:
            raise LaserError(f"the payload does not decode under these tables ({error})") from None
        return stages

    def nominal_bits(self, rows: list[torch.Tensor]) -> float:
        """Bits of a fixed-length code of the stages coded by ``rows``: log2 of each symbol's
        row's support."""
        return sum(
            float(torch.log2(table.sizes[r].double()).sum())
            for table, r in zip(self.tables, rows, strict=True)
        )


def _groups(rows: torch.Tensor) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """The positions of ``rows`` (any shape, flattened) grouped by row, each group in raster
    order (a stable sort), and each group's row and size: one sort where a mask per row would
    read every symbol once per row."""
    flat = rows.flatten()
    order = torch.argsort(flat, stable=True)
    present, counts = torch.unique_consecutive(flat[order], return_counts=True)
    return order, list(zip(present.tolist(), counts.tolist(), strict=True))


def _model(frequencies: torch.Tensor) -> Categorical | None:
    """A constriction categorical of integer frequencies (alphabet,), handed over as exact
    float64 multiples of 2**-PRECISION, as the prior coder does; None for one symbol, which
    constriction cannot model and needs no bits."""
    if len(frequencies) == 1:
        return None
    return Categorical(exact_probabilities(frequencies), perfect=False)
