"""The dictionary bottleneck behind ``omp`` and ``ksvd``: sparse codes found by Batch-OMP.

Every latent position, or every non-overlapping p x p patch of positions, is a signal of
dimension M = dim * p * p, coded by at most ``sparsity`` of ``atoms`` unit-norm atoms
(``laser_core.ops.batch_omp``). The decoder sees the reconstruction; the encoder's gradient
passes straight through it, and a commitment loss pulls the latents towards their codes. The
dictionary learns by one of three rules (``update``):

- ``gradient``: the dictionary loss ‖sg(z) - Dγ‖² with the codes γ held fixed (VQ-VAE's codebook
  loss), atoms re-normalised after every optimizer step;
- ``online``: Mairal et al.'s closed-form update from accumulated code statistics
  (``laser_core.ops.online_dictionary``), no gradient;
- ``ksvd``: approximate K-SVD sweeps over the step's signals (``laser_core.ops.ksvd``), no
  gradient. The ``ksvd`` bottleneck is this rule under its own name.

The dictionary is stored atom per row, (atoms, M), so the atoms revived after an optimizer step
are rows of the parameter whose optimizer state the trainer resets. Non-gradient updates and
revival sum their statistics over processes, so every rank keeps the same dictionary.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from laser_core import (
    AtMost,
    Bottleneck,
    BottleneckOutput,
    BuildContext,
    Codes,
    CodeSpec,
    ComponentConfig,
    FiniteFloat,
    LaserError,
    ModeConfig,
    ModeOptions,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    all_reduce_sum,
    broadcast_from_main,
    straight_through,
)
from laser_core.ops import (
    batch_omp,
    code_statistics,
    ksvd,
    online_dictionary_update,
    reconstruct,
    reinitialise_atoms,
)

UPDATE_OPTIONS = ModeOptions(
    "update",
    {
        "dictionary_loss_weight": ("gradient", 1.0),
        "forgetting_factor": ("online", 0.99),
        "ksvd_iterations": ("ksvd", 1),
    },
)


MAX_ATOMS = 2**16

AtomCount = Annotated[
    PositiveInt,
    AtMost(
        MAX_ATOMS,
        "Batch-OMP keeps the atoms' Gram matrix, atoms x atoms numbers, which for 2**16 atoms "
        "already takes 16 GiB",
    ),
]
"""The size of a dictionary: 1 to 2**16 atoms."""


class SparseCodingConfig(ComponentConfig):
    """Keys of every dictionary bottleneck (``omp``, ``ksvd``)."""

    atoms: AtomCount = Field(512, description="dictionary size K")
    sparsity: PositiveInt = Field(
        8, description="atoms per signal at most; at most latent_dim * patch_size**2"
    )
    tolerance: NonNegativeFloat | None = Field(
        None, description="stop coding a signal once its squared residual norm is this"
    )
    patch_size: PositiveInt = Field(1, description="code non-overlapping p x p latent patches")
    commitment_weight: NonNegativeFloat = Field(0.25, description="weight of ‖z - sg(Dγ)‖²")
    dead_atom_after: PositiveInt = Field(
        100, description="an atom no signal used in this many optimizer steps is dead"
    )
    revive_dead_atoms: bool = Field(
        True, description="replace each dead atom by a worst-represented signal's residual"
    )
    backend: Literal["auto", "torch", "triton"] = Field(
        "auto", description="batch_omp backend: Triton on CUDA and torch elsewhere by default"
    )


class OMPConfig(SparseCodingConfig, ModeConfig):
    mode_options = UPDATE_OPTIONS

    update: Literal["gradient", "online", "ksvd"] = Field(
        "gradient", description="how the dictionary learns"
    )
    dictionary_loss_weight: PositiveFloat | None = Field(
        None, description="update: gradient only; weight of ‖sg(z) - Dγ‖² (default 1.0)"
    )
    forgetting_factor: FiniteFloat | None = Field(
        None, gt=0, le=1, description="update: online only; statistics decay per step (0.99)"
    )
    ksvd_iterations: PositiveInt | None = Field(
        None, description="update: ksvd only; K-SVD rounds per optimizer step (1)"
    )


class DictionaryBottleneck(Bottleneck):
    """Sparse codes over a learned dictionary (Batch-OMP; gradient, online or K-SVD).

    Latents (batch, dim, height, width) -> sparse codes (batch, height/p, width/p, sparsity)
    over ``dictionary`` (atoms, dim * p * p)."""

    def __init__(self, config: OMPConfig, context: BuildContext):
        super().__init__()
        dim = context.latent_dim
        self.dim, self.config = dim, config
        self.patch_size = config.patch_size
        self.signal_dim = dim * config.patch_size**2
        _check_sparsity(config, dim, self.signal_dim)
        atoms = F.normalize(torch.randn(config.atoms, self.signal_dim), dim=1)
        if config.update == "gradient":
            self.dictionary = nn.Parameter(atoms)
        else:
            self.register_buffer("dictionary", atoms)
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("unused_steps", torch.zeros(config.atoms, dtype=torch.long))
        if config.update == "online":
            self.register_buffer("atom_products", torch.zeros(config.atoms, config.atoms))
            self.register_buffer("signal_products", torch.zeros(self.signal_dim, config.atoms))
        # This process's signals and codes since the last optimizer step; a plain attribute,
        # so DDP's buffer broadcast leaves it alone.
        self._pending: list[tuple[torch.Tensor, Codes]] = []
        self._initialized: bool | None = None  # the buffer's value once read (see forward)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._initialized = None  # a loaded buffer is read again on the next training step

    # -- the bottleneck contract -----------------------------------------------------------

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        signals = self._signals(z)
        if self.training and self._initialized is None:  # read the buffer once
            self._initialized = bool(self.initialized)
        if self.training and not self._initialized:
            self._initialize(signals.detach())
        codes = self._code(signals)
        reconstruction = reconstruct(codes, self.dictionary.t())
        target = signals.detach().float()
        loss = self.config.commitment_weight * F.mse_loss(signals.float(), reconstruction.detach())
        if self.config.update == "gradient":
            weight = self.config.option("dictionary_loss_weight")
            loss = loss + weight * F.mse_loss(reconstruction, target)
        # The decoder's gradient reaches the latents only; the dictionary learns by its loss.
        quantized = straight_through(reconstruction.detach().to(signals.dtype), signals)
        if self.training:
            self._record(target, codes)
        return BottleneckOutput(
            self._latents(quantized, z.shape),
            loss,
            self._grid(codes, z.shape),
            self._stats(codes),
        )

    def encode(self, z: torch.Tensor) -> Codes:
        return self._grid(self._code(self._signals(z)), z.shape)

    def decode(self, codes: Codes) -> torch.Tensor:
        batch, rows, cols, depth = codes.indices.shape
        flat = codes.map(lambda t: t.reshape(-1, depth))
        p = self.patch_size
        shape = (batch, self.dim, rows * p, cols * p)
        return self._latents(reconstruct(flat, self.dictionary.t()), shape)

    def code_spec(self) -> CodeSpec:
        return CodeSpec([self.config.atoms] * self.config.sparsity, has_values=True)

    def after_optimizer_step(self) -> list[tuple[nn.Parameter, torch.Tensor]]:
        pending, self._pending = self._pending, []
        with torch.no_grad():
            if self.config.update == "gradient":
                self.dictionary.copy_(F.normalize(self.dictionary, dim=1))
            if not pending:
                return []
            signals = torch.cat([s for s, _ in pending])
            codes = Codes(
                torch.cat([c.indices for _, c in pending]),
                torch.cat([c.values for _, c in pending]),
            )
            if self.config.update == "online":
                self._online_update(signals, codes)
            elif self.config.update == "ksvd":
                codes = self._ksvd_update(signals, codes)
            revived = self._revive_dead_atoms(signals, codes)
        if isinstance(self.dictionary, nn.Parameter):
            return [(self.dictionary, revived)]
        return []

    # -- coding ----------------------------------------------------------------------------

    def _code(self, signals: torch.Tensor) -> Codes:
        config = self.config
        return batch_omp(
            signals, self.dictionary.t(), config.sparsity, config.tolerance, backend=config.backend
        )

    def _signals(self, z: torch.Tensor) -> torch.Tensor:
        """(batch, dim, height, width) -> (batch * h/p * w/p, dim * p * p), patch by patch."""
        batch, dim, height, width = z.shape
        p = self.patch_size
        if dim != self.dim or height % p or width % p:
            raise ValueError(
                f"omp bottleneck: latents {tuple(z.shape)} need {self.dim} channels and a height "
                f"and width divisible by patch_size={p}"
            )
        patches = z.reshape(batch, dim, height // p, p, width // p, p)
        return patches.permute(0, 2, 4, 1, 3, 5).reshape(-1, self.signal_dim)

    def _latents(self, signals: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        """Inverse of ``_signals`` for latents of ``shape``."""
        batch, dim, height, width = shape
        p = self.patch_size
        patches = signals.reshape(batch, height // p, width // p, dim, p, p)
        return patches.permute(0, 3, 1, 4, 2, 5).reshape(shape)

    def _grid(self, codes: Codes, shape: tuple[int, ...]) -> Codes:
        batch, _, height, width = shape
        p = self.patch_size
        return codes.map(lambda t: t.reshape(batch, height // p, width // p, -1))

    def _stats(self, codes: Codes) -> dict[str, torch.Tensor]:
        nonzero = codes.values != 0
        usage = _used_counts(codes, self.config.atoms)
        dead = self.unused_steps >= self.config.dead_atom_after
        used_slots = nonzero.sum()
        return {
            "sparsity": nonzero.sum(1).float().mean(),
            "active_atoms": (usage > 0).sum().float(),
            "dead_atoms": dead.sum().float(),
            "coefficient_magnitude": codes.values.float().abs().sum() / used_slots.clamp(min=1),
        }

    # -- learning outside autograd -----------------------------------------------------------

    def _initialize(self, signals: torch.Tensor) -> None:
        """Atoms from distinct random signals of the first training batch (rank 0's)."""
        candidates = signals[signals.float().square().sum(1) > 0]
        take = min(self.config.atoms, candidates.shape[0])
        chosen = candidates[torch.randperm(candidates.shape[0], device=signals.device)[:take]]
        atoms = self.dictionary.detach().clone()
        atoms[:take] = F.normalize(chosen.float(), dim=1)
        with torch.no_grad():
            self.dictionary.copy_(broadcast_from_main(atoms))
            self.initialized.fill_(True)
        self._initialized = True

    def _record(self, signals: torch.Tensor, codes: Codes) -> None:
        """Keep this step's signals and codes for the update after the optimizer step."""
        self._pending.append((signals, codes))

    def _online_update(self, signals: torch.Tensor, codes: Codes) -> None:
        products, correlations = code_statistics(signals, codes, self.config.atoms)
        forgetting = self.config.option("forgetting_factor")
        self.atom_products.mul_(forgetting).add_(all_reduce_sum(products))
        self.signal_products.mul_(forgetting).add_(all_reduce_sum(correlations))
        dictionary = online_dictionary_update(
            self.dictionary.t(), self.atom_products, self.signal_products
        )
        self.dictionary.copy_(dictionary.t())

    def _ksvd_update(self, signals: torch.Tensor, codes: Codes) -> Codes:
        config = self.config
        result = ksvd(
            signals,
            self.dictionary.t(),
            config.sparsity,
            int(config.option("ksvd_iterations")),
            tolerance=config.tolerance,
            codes=codes,
            backend=config.backend,
        )
        self.dictionary.copy_(result.dictionary.t())
        return result.codes

    def _revive_dead_atoms(self, signals: torch.Tensor, codes: Codes) -> torch.Tensor:
        """Count the steps each atom went unused by every process; replace the atoms unused for
        ``dead_atom_after`` steps by the residual directions of the worst-represented signals
        (the i-th dead atom by the i-th worst) and return them as a mask over atoms. Fixed
        shapes throughout, so the host never waits to learn how many atoms died."""
        atoms = self.config.atoms
        counts = all_reduce_sum(_used_counts(codes, atoms))
        self.unused_steps.add_(1).masked_fill_(counts > 0, 0)
        dead = self.unused_steps >= self.config.dead_atom_after
        if not self.config.revive_dead_atoms:
            return torch.zeros_like(dead)
        residual = signals - reconstruct(codes, self.dictionary.t())
        revived = reinitialise_atoms(self.dictionary, dead, residual)
        self.unused_steps.masked_fill_(revived, 0)
        if self.config.update == "online":  # forget what the revived atoms accumulated
            self.atom_products.masked_fill_(revived[:, None] | revived[None, :], 0)
            self.signal_products.masked_fill_(revived[None, :], 0)
        return revived


def _used_counts(codes: Codes, atoms: int) -> torch.Tensor:
    """How many signals use each atom (slots with a non-zero value), without masking."""
    used = (codes.values != 0).long().flatten()
    counts = torch.zeros(atoms, dtype=torch.long, device=used.device)
    return counts.scatter_add_(0, codes.indices.flatten(), used)


def _check_sparsity(config: SparseCodingConfig, dim: int, signal_dim: int) -> None:
    if config.sparsity > signal_dim or config.sparsity > config.atoms:
        raise LaserError(
            f"bottleneck: sparsity={config.sparsity} exceeds the signal dimension {signal_dim} "
            f"(latent_dim {dim} x patch_size {config.patch_size}²) or atoms={config.atoms}; OMP "
            "cannot select more linearly independent atoms than that. Lower sparsity, or raise "
            "patch_size or the encoder's latent_dim."
        )
