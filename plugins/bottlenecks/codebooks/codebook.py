"""What a codebook does besides the lookup arithmetic, shared by ``vq`` and ``rq`` (which
composes it level by level): k-means initialisation, EMA statistics, dead-code revival."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from laser_core import (
    FiniteFloat,
    ModeConfig,
    ModeOptions,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    all_reduce_sum,
    broadcast_from_main,
    code_counts,
    usage_stats,
)
from laser_core.ops import Backend, cluster_statistics, kmeans, nearest_code

UPDATE_OPTIONS = ModeOptions("update", {"decay": ("ema", 0.99), "epsilon": ("ema", 1e-5)})


class CodebookConfig(ModeConfig):
    """How a codebook learns; the keys vq and rq share."""

    mode_options = UPDATE_OPTIONS

    commitment_weight: NonNegativeFloat = Field(
        0.25, description="β, weight of ||z - sg(code)||², which keeps latents near codes"
    )
    update: Literal["ema", "gradient"] = Field(
        "ema",
        description="ema: each code is the running mean of the latents assigned to it; "
        "gradient: codes learn from the codebook loss ||sg(z) - code||²",
    )
    decay: FiniteFloat | None = Field(
        None, gt=0, lt=1, description="update: ema only; EMA decay (default 0.99)"
    )
    epsilon: PositiveFloat | None = Field(
        None,
        description="update: ema only; Laplace smoothing of EMA cluster sizes, so that an empty "
        "cluster never divides by zero (default 1e-5)",
    )
    kmeans_init: bool = Field(True, description="place the codes by k-means on the first batch")
    kmeans_iterations: PositiveInt = Field(10)
    dead_code_after: PositiveInt = Field(
        100, description="a code not chosen in this many training batches in a row is dead"
    )
    revive_dead_codes: bool = Field(
        True, description="replace each dead code by a random latent of the current batch"
    )
    backend: Backend = Field(
        "auto",
        description="nearest-code search: a fused Triton kernel on CUDA and chunked torch "
        "elsewhere by default (laser_core.ops.nearest_code)",
    )


class Codebook(nn.Module):
    """``size`` codes of ``dim`` numbers, stored fp32, and their non-gradient learning.

    Every method takes latent vectors flattened to (N, dim) in fp32. Statistics are summed over
    processes and random choices come from rank 0, so every process holds the same codes.
    """

    weight: torch.Tensor
    cluster_size: torch.Tensor
    embed_sum: torch.Tensor
    initialized: torch.Tensor
    unused_steps: torch.Tensor

    def __init__(self, size: int, dim: int, config: CodebookConfig, normalize: bool = False):
        super().__init__()
        self.size, self.config, self.normalize = size, config, normalize
        self.ema = config.update == "ema"
        weight = torch.randn(size, dim)
        if self.ema:
            self.register_buffer("weight", weight)
            self.register_buffer("cluster_size", torch.ones(size))
            self.register_buffer("embed_sum", weight.clone())
        else:
            self.weight = nn.Parameter(weight)
        self.register_buffer("initialized", torch.tensor(not config.kmeans_init))
        self.register_buffer("unused_steps", torch.zeros(size, dtype=torch.long))
        self.candidates: torch.Tensor | None = None  # latents that may replace dead codes
        self._initialized: bool | None = None  # the buffer's value once read (see initialize)

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        self._initialized = None  # a loaded buffer is read again on the next training step

    def vectors(self) -> torch.Tensor:
        """The codes (size, dim) as latents are compared with them; unit length if normalize."""
        return F.normalize(self.weight, dim=1) if self.normalize else self.weight

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes (..., dim) for indices (...); differentiable in the codes for update: gradient."""
        return F.embedding(indices, self.vectors())

    @torch.no_grad()
    def assign(self, x: torch.Tensor, cost: torch.Tensor | None = None) -> torch.Tensor:
        """Index (N,) of the nearest code for each row of x (N, dim), without the (N, size)
        distance matrix. With ``cost`` (size,) >= 0, the code minimising ||x - code||² +
        cost[code] (entropy-constrained VQ): the nearest code once every code carries
        sqrt(cost) in one more coordinate, where every latent carries 0."""
        codes = self.vectors()
        if cost is not None:
            x = F.pad(x, (0, 1))
            codes = torch.cat([codes, cost.sqrt()[:, None].to(codes.dtype)], 1)
        return nearest_code(x, codes, backend=self.config.backend)

    def loss(self, x: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """β ||x - sg(codes)||², plus ||sg(x) - codes||² when codes learn by gradient; means."""
        loss = self.config.commitment_weight * F.mse_loss(x, codes.detach())
        if not self.ema:
            loss = loss + F.mse_loss(codes, x.detach())
        return loss

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Place the codes by k-means on x (N, dim), the first training batch; later calls
        do nothing."""
        if self._initialized is None:  # read the buffer once, not on every step
            self._initialized = bool(self.initialized)
        if self._initialized:
            return
        centroids = kmeans(x, self.size, self.config.kmeans_iterations)
        self._reset(torch.ones(self.size, dtype=torch.bool, device=x.device), centroids)
        self.initialized.fill_(True)
        self._initialized = True

    @torch.no_grad()
    def update(self, x: torch.Tensor, indices: torch.Tensor) -> None:
        """Fold a training batch, x (N, dim) assigned to indices (N,), into the codebook: EMA
        of cluster sizes and sums (Laplace-smoothed), idle counts, and revival candidates."""
        if self.ema:
            counts, sums = cluster_statistics(x, indices, self.size)
            decay = self.config.option("decay")
            self.cluster_size.lerp_(counts, 1 - decay)
            self.embed_sum.lerp_(sums, 1 - decay)
            total = self.cluster_size.sum()
            epsilon = self.config.option("epsilon")
            smoothed = (self.cluster_size + epsilon) / (total + self.size * epsilon) * total
            self.weight.copy_(self.embed_sum / smoothed.unsqueeze(1))
        else:
            counts = all_reduce_sum(code_counts(indices, self.size))
        self.unused_steps.add_(1).masked_fill_(counts > 0, 0)
        if self.config.revive_dead_codes:  # random distinct rows where there are enough
            if len(x) >= self.size:
                rows = torch.randperm(len(x), device=x.device)[: self.size]
            else:
                rows = torch.randint(len(x), (self.size,), device=x.device)
            self.candidates = x[rows]

    @torch.no_grad()
    def after_optimizer_step(self) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """Replace dead codes by latents of the last training batch (rank 0's), the i-th dead
        code by the i-th candidate. Done here, not in forward, because autograd still needs the
        codes then; returns the revived rows (a boolean mask) of a gradient-trained codebook so
        that the trainer resets their optimizer state. Masks, not indices: the host never
        waits to learn how many codes died."""
        candidates, self.candidates = self.candidates, None
        if candidates is None:
            return []
        dead = self.unused_steps >= self.config.dead_code_after
        order = (dead.long().cumsum(0) - 1).clamp(min=0)  # each dead code's rank among them
        self._reset(dead, broadcast_from_main(candidates)[order])
        return [] if self.ema else [(self.weight, dead)]

    def _reset(self, rows: torch.Tensor, vectors: torch.Tensor) -> None:
        """Move the codes where ``rows`` (size,) bool holds to ``vectors`` (size, dim) there,
        each weighing as one latent in the EMA."""
        self.weight.copy_(torch.where(rows[:, None], vectors, self.weight))
        self.unused_steps.masked_fill_(rows, 0)
        if self.ema:
            self.cluster_size.masked_fill_(rows, 1.0)
            self.embed_sum.copy_(torch.where(rows[:, None], vectors, self.embed_sum))

    def stats(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """Usage in this batch (indices of any shape) and dead codes, as float tensors."""
        dead = self.unused_steps >= self.config.dead_code_after
        counts = code_counts(indices, self.size)
        return {**usage_stats(counts), "dead_codes": dead.sum().float()}
