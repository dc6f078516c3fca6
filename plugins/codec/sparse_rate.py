"""``sparse-rate``: sparse codes over a learnt dictionary that pay for their bits.

Each latent position (a vector of ``dim`` numbers) is coded by Batch-OMP as at most
``sparsity`` atoms of a dictionary learnt by gradient (``laser_core.ops.batch_omp``). The
coefficients, refitted by least squares so that gradients reach the encoder and the atoms,
are divided by a learnt step and rounded (straight-through in training). A slot whose
coefficient rounds to zero adds nothing, so it is dropped: where the image is flat the rate
term pushes coefficients under half a step and positions code fewer atoms.

What is coded, per position, in ``sparsity + 1`` stages:

- the ids of the kept atoms in increasing order, slot by slot, then STOP (id ``atoms``) if
  fewer than ``sparsity`` are kept. Slot 0 has one categorical; slot k > 0 has one per id of
  slot k - 1, the context, which learns that ids only grow. They are learnt by counting the
  training codes with decay (all processes' counts summed). After STOP every slot is
  STOP for free (a row of certainty).
- the quantized coefficients, each under its atom's learnt non-parametric density
  (``EntropyBottleneck``, one channel per atom). A kept coefficient is never zero, so the
  integer q is coded as q - 1 when positive: every integer symbol is a coefficient and no
  probability is spent on zero. The slots after STOP are a certain zero.

``bits`` is the sum of all of it (ids, STOP and coefficients, -log2 likelihood, additive
uniform noise on the coefficients in training, rounding in eval): what the range coder writes
from the tables ``coding_tables`` derives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from laser_core import (
    AtMost,
    BottleneckOutput,
    BuildContext,
    Codes,
    CodeSpec,
    ComponentConfig,
    EntropyCodedBottleneck,
    LaserError,
    NonNegativeFloat,
    PositiveInt,
    Register,
    all_reduce_sum,
    full_precision,
    hookimpl,
)
from laser_core.ops import PRECISION, CodingTable, batch_omp, to_frequencies

from .densities import EntropyBottleneck, factorized_table

ID_COUNT_DECAY = 0.995
"""The atom ids' categoricals are their training counts, decayed by this per optimizer step
(a memory of about 200 steps): a gradient on logits at a small lr would take thousands of
steps to move a distribution over hundreds of symbols."""
ID_COUNT_PRIOR = 0.1
"""Added to every count, so every id keeps a probability."""
INITIAL_STEP = 0.1
"""The coefficients' quantization step before it learns: fine enough that the first latents,
of order one, keep some atoms."""


MAX_ATOMS = 2**16


class SparseRateConfig(ComponentConfig):
    atoms: Annotated[
        PositiveInt,
        AtMost(
            MAX_ATOMS,
            "Batch-OMP keeps the atoms' Gram matrix, atoms x atoms numbers, which for 2**16 "
            "atoms already takes 16 GiB",
        ),
    ] = Field(64, description="dictionary size: atoms of latent_dim numbers")
    sparsity: PositiveInt = Field(4, description="atoms per latent position at most")
    commitment_weight: NonNegativeFloat = Field(
        0.25, description="weight of ‖z - sg(quantized)‖², which keeps latents near their code"
    )


class SparseRateBottleneck(EntropyCodedBottleneck):
    """Latents (batch, dim, height, width) -> at most ``sparsity`` atoms per position with
    quantized coefficients; codes: indices (batch, height, width, sparsity), STOP = ``atoms``
    in unused slots, and the dequantized coefficients as values."""

    def __init__(self, config: SparseRateConfig, context: BuildContext):
        super().__init__()
        self.dim, self.config = context.latent_dim, config
        self.atoms, self.sparsity = config.atoms, config.sparsity
        if self.sparsity > min(self.dim, self.atoms):
            raise LaserError(
                f"bottleneck: sparsity={self.sparsity} exceeds latent_dim={self.dim} or "
                f"atoms={self.atoms}; OMP cannot select more linearly independent atoms than "
                "that. Lower sparsity or raise the encoder's latent_dim."
            )
        self.dictionary = nn.Parameter(F.normalize(torch.randn(self.atoms, self.dim), dim=1))
        self.log_step = nn.Parameter(torch.tensor(math.log(INITIAL_STEP)))
        symbols = self.atoms + 1  # the atoms and STOP
        self.register_buffer("first_id_counts", torch.zeros(symbols))
        self.register_buffer("next_id_counts", torch.zeros(self.sparsity - 1, self.atoms, symbols))
        self.coefficient_density = EntropyBottleneck(self.atoms)
        # This process's id counts since the last optimizer step; a plain attribute, so DDP's
        # buffer broadcast leaves it alone.
        self._pending_counts: list[torch.Tensor] = []

    @property
    def step(self) -> torch.Tensor:
        return self.log_step.exp()

    # -- training and eval ------------------------------------------------------------------

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        with full_precision(z):
            code = self._code(z.float())
            atoms = self._unit_atoms()[code.ids.clamp_max(self.atoms - 1)]
            # Rounded in the forward pass, the identity in the backward one.
            rounded = code.scaled + (code.rounded - code.scaled).detach()
            coefficients = rounded * self.step * code.kept
            signals = torch.einsum("nk,nkd->nd", coefficients, atoms)
            quantized = self._latents(signals, z.shape)
            bits = self._bits(code).reshape(z.shape[0], -1).sum(1)
            if self.training:
                self._pending_counts.append(self._id_counts(code))
            loss = self.config.commitment_weight * F.mse_loss(z.float(), quantized.detach())
        kept = code.kept.sum(1).float()
        return BottleneckOutput(
            quantized=quantized.to(z.dtype),
            loss=loss,
            codes=self._codes(code, coefficients.detach(), z.shape),
            stats={
                "atoms_per_position": kept.mean().detach(),
                "empty_positions": (kept == 0).float().mean(),
                "step": self.step.detach(),
            },
            bits=bits,
        )

    def _bits(self, code: SparseCode) -> torch.Tensor:
        """-log2 likelihood (positions,) of each position's ids, STOP and coefficients. A kept
        slot's bits are weighted by 1 whose gradient is that of clamp(|coefficient / step|, 0,
        1): the rate then shrinks small coefficients towards the rounding that drops them."""
        kept = code.kept.float()
        weight = kept * (1 + _ramp(code.scaled) - _ramp(code.scaled).detach())
        symbols = torch.where(code.kept, code.ids, self.atoms)
        first, following = self._id_log_probs()
        log_probs = [first[symbols[:, 0]]]
        for slot in range(1, self.sparsity):
            previous = symbols[:, slot - 1].clamp_max(self.atoms - 1)
            table = following[slot - 1][previous]
            coded = kept[:, slot - 1]  # after STOP a slot is certain
            log_probs.append(table.gather(1, symbols[:, slot : slot + 1])[:, 0] * coded)
        id_bits = -torch.stack(log_probs, 1) / math.log(2)
        id_bits = id_bits * torch.where(code.kept, weight, 1.0)
        coefficient_bits = torch.zeros_like(kept)
        if code.kept.any():
            # eval: the coded integer; training: the noisy stand-in the density adds noise to
            shifted = code.scaled - (code.scaled > 0).float()
            values = shifted if self.training else code.symbols.float()
            values, ids = values[code.kept], code.ids[code.kept]
            spread = values.expand(self.atoms, -1)[None, :, None]  # (1, atoms, 1, kept)
            _, likelihoods = self.coefficient_density(spread)
            chosen = likelihoods[0, ids, 0, torch.arange(len(ids), device=ids.device)]
            coefficient_bits = coefficient_bits.index_put(
                torch.nonzero(code.kept, as_tuple=True), -torch.log2(chosen)
            )
        return (id_bits + coefficient_bits * weight).sum(1)

    # -- the id model ------------------------------------------------------------------------

    def _id_log_probs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Natural-log probabilities of slot 0's ids (atoms + 1,) and of slot k's given slot
        k - 1's id (sparsity - 1, atoms, atoms + 1), from the decayed counts."""
        return tuple(
            (counts + ID_COUNT_PRIOR).log() - (counts + ID_COUNT_PRIOR).sum(-1, keepdim=True).log()
            for counts in (self.first_id_counts, self.next_id_counts)
        )

    @torch.no_grad()
    def _id_counts(self, code: SparseCode) -> torch.Tensor:
        """This batch's counts of slot 0's symbols and of every coded (context, symbol) pair
        of the later slots, flattened and concatenated as the two count buffers are."""
        symbols = torch.where(code.kept, code.ids, self.atoms)
        alphabet = self.atoms + 1
        slots = torch.arange(1, self.sparsity, device=symbols.device)
        pairs = ((slots - 1) * self.atoms + symbols[:, :-1].clamp_max(self.atoms - 1)) * alphabet
        pairs = (pairs + symbols[:, 1:])[code.kept[:, :-1]]  # after STOP nothing is coded
        return torch.cat(
            [
                torch.bincount(symbols[:, 0], minlength=alphabet),
                torch.bincount(pairs, minlength=self.next_id_counts.numel()),
            ]
        ).float()

    def after_optimizer_step(self) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """Decay the id counts and add this step's, summed over processes, so that every
        process holds the same id model."""
        pending, self._pending_counts = self._pending_counts, []
        if pending:
            with torch.no_grad():
                counts = all_reduce_sum(torch.stack(pending).sum(0))
                first = counts[: self.first_id_counts.numel()]
                following = counts[self.first_id_counts.numel() :]
                self.first_id_counts.mul_(ID_COUNT_DECAY).add_(first)
                self.next_id_counts.mul_(ID_COUNT_DECAY).add_(
                    following.view_as(self.next_id_counts)
                )
        return []

    # -- the code ---------------------------------------------------------------------------

    def _unit_atoms(self) -> torch.Tensor:
        """The dictionary (atoms, dim), each atom of unit norm as OMP's selection needs."""
        return F.normalize(self.dictionary.float(), dim=1)

    def _code(self, z: torch.Tensor) -> SparseCode:
        """OMP's support, the coefficients refitted on it with gradients, then rounded, the
        slots that round to zero dropped and the kept ones sorted by id."""
        signals = z.permute(0, 2, 3, 1).reshape(-1, self.dim)
        unit = self._unit_atoms()
        found = batch_omp(signals.detach(), unit.detach().t(), self.sparsity)
        used = found.values != 0
        coefficients = _least_squares(signals, unit[found.indices], used)
        scaled = coefficients / self.step
        rounded = torch.round(scaled.detach())
        kept = rounded != 0
        order = torch.where(kept, found.indices, self.atoms).argsort(dim=1, stable=True)
        fields = (found.indices, scaled, rounded, kept)
        ids, scaled, rounded, kept = (field.gather(1, order) for field in fields)
        symbols = torch.where(kept, rounded - (rounded > 0).long(), 0).long()
        return SparseCode(ids=ids, scaled=scaled, rounded=rounded, kept=kept, symbols=symbols)

    def _latents(self, signals: torch.Tensor, shape: torch.Size) -> torch.Tensor:
        """(batch * height * width, dim) -> (batch, dim, height, width)."""
        batch, _, height, width = shape
        return signals.reshape(batch, height, width, self.dim).permute(0, 3, 1, 2)

    def _codes(self, code: SparseCode, coefficients: torch.Tensor, shape: torch.Size) -> Codes:
        batch, _, height, width = shape
        ids = torch.where(code.kept, code.ids, self.atoms)
        return Codes(
            indices=ids.reshape(batch, height, width, self.sparsity),
            values=coefficients.float().reshape(batch, height, width, self.sparsity),
        )

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> Codes:
        code = self._code(z.float())
        coefficients = code.rounded * self.step * code.kept
        return self._codes(code, coefficients, z.shape)

    def decode(self, codes: Codes) -> torch.Tensor:
        atoms = self._unit_atoms()[codes.indices.clamp_max(self.atoms - 1)]
        kept = codes.indices < self.atoms
        signals = torch.einsum("bhwk,bhwkd->bhwd", codes.values * kept, atoms)
        return signals.permute(0, 3, 1, 2)

    def code_spec(self) -> CodeSpec:
        return CodeSpec([self.atoms + 1] * self.sparsity, has_values=True)

    # -- whole-image coding -----------------------------------------------------------------

    @torch.no_grad()
    def coding_tables(self) -> list[CodingTable]:
        first, following = self._id_log_probs()
        tables = [_table(to_frequencies(first[None]), 0)]
        for slot in range(1, self.sparsity):
            rows = to_frequencies(following[slot - 1])
            tables.append(_with_certain_row(_table(rows, 0), self.atoms))
        return [*tables, _with_certain_row(factorized_table(self.coefficient_density), 0)]

    @torch.no_grad()
    def stage_symbols(self, z: torch.Tensor) -> list[torch.Tensor]:
        code = self._code(z.float())
        batch, _, height, width = z.shape
        ids = torch.where(code.kept, code.ids, self.atoms)
        ids = ids.reshape(batch, height, width, self.sparsity).permute(0, 3, 1, 2)
        symbols = code.symbols.reshape(batch, height, width, self.sparsity).permute(0, 3, 1, 2)
        return [*ids.split(1, dim=1), symbols]

    def stage_shapes(self, grid: tuple[int, int]) -> list[tuple[int, int, int]]:
        return [(1, *grid)] * self.sparsity + [(self.sparsity, *grid)]

    def stage_rows(
        self, stage: int, decoded: list[torch.Tensor], grid: tuple[int, int]
    ) -> torch.Tensor:
        if stage == 0:
            return torch.zeros((1, *grid), dtype=torch.long)
        if stage < self.sparsity:
            return decoded[stage - 1][0].cpu()  # the previous id, or STOP: the certain row
        return torch.cat(decoded[: self.sparsity], 1)[0].cpu()  # the atom, or STOP: zero

    def dequantize(self, decoded: list[torch.Tensor]) -> torch.Tensor:
        ids = torch.cat(decoded[: self.sparsity], 1)
        symbols = decoded[self.sparsity]
        rounded = symbols + (symbols >= 0).long()
        values = (rounded * self.step.detach()).permute(0, 2, 3, 1).float()
        return self.decode(Codes(indices=ids.permute(0, 2, 3, 1), values=values))


@dataclass
class SparseCode:
    """One batch's sparse code, positions flattened, each (positions, sparsity): the atom
    ``ids``; the coefficients over the step, ``scaled``, and ``rounded``; ``kept``, the slots
    whose rounded coefficient is not zero, first in each row, in increasing id; ``symbols``,
    the coded integers (rounded, less one where positive; 0 where not kept)."""

    ids: torch.Tensor
    scaled: torch.Tensor
    rounded: torch.Tensor
    kept: torch.Tensor
    symbols: torch.Tensor


def _least_squares(signals: torch.Tensor, atoms: torch.Tensor, used: torch.Tensor) -> torch.Tensor:
    """Coefficients (n, sparsity) of each signal (n, dim) fitted on its ``used`` slots of
    ``atoms`` (n, sparsity, dim), zero elsewhere; differentiable in signals and atoms."""
    mask = used.float()
    gram = torch.einsum("nkd,njd->nkj", atoms, atoms) * mask[:, :, None] * mask[:, None, :]
    gram = gram + torch.diag_embed(1 - mask)
    correlations = torch.einsum("nkd,nd->nk", atoms, signals) * mask
    return torch.linalg.solve(gram, correlations)


def _ramp(scaled: torch.Tensor) -> torch.Tensor:
    return scaled.abs().clamp_max(1.0)


def _table(frequencies: torch.Tensor, first_symbol: int) -> CodingTable:
    """Frequencies (rows, alphabet) over the integers from ``first_symbol``, untrimmed."""
    rows, alphabet = frequencies.shape
    return CodingTable(
        frequencies,
        torch.full((rows,), first_symbol, dtype=torch.long),
        torch.full((rows,), alphabet, dtype=torch.long),
    )


def _with_certain_row(table: CodingTable, symbol: int) -> CodingTable:
    """``table`` and one more row on which ``symbol`` costs 2**-PRECISION / ln 2 bits: the
    least a range coder's row can hold is two symbols, each at least 1 in 2**PRECISION."""
    width = max(table.frequencies.shape[1], 2)
    frequencies = F.pad(table.frequencies, (0, width - table.frequencies.shape[1]))
    certain = torch.zeros(1, width, dtype=torch.long)
    certain[0, :2] = torch.tensor([2**PRECISION - 1, 1])
    return CodingTable(
        torch.cat([frequencies, certain]),
        torch.cat([table.offsets, torch.tensor([symbol])]),
        torch.cat([table.sizes, torch.tensor([2])]),
    )


@hookimpl
def laser_register_bottlenecks(register: Register) -> None:
    register("sparse-rate", SparseRateBottleneck, config=SparseRateConfig)
