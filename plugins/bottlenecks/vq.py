"""``vq``: vector quantization (van den Oord et al., 2017), each latent vector replaced by its
nearest code, with codes learnt as running means (EMA) or by a codebook loss.

:class:`Codebook` holds everything a codebook does besides the lookup arithmetic (k-means
initialisation, EMA statistics, dead-code revival) so that ``rq`` composes it level by level.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from laser_core import hookimpl
from laser_core.nn.distributed import all_reduce_sum, broadcast_from_main
from laser_core.ops.dispatch import Backend
from laser_core.ops.kmeans import cluster_statistics, kmeans
from laser_core.ops.nearest_code import nearest_code
from laser_core.plugin.contracts import (
    Bottleneck,
    BottleneckOutput,
    BuildContext,
    Codes,
    CodeSpec,
    ComponentConfig,
)
from laser_core.plugin.hookspecs import Register


class CodebookConfig(ComponentConfig):
    """How a codebook learns; the keys vq and rq share."""

    commitment_weight: float = Field(
        0.25, ge=0, description="β, weight of ||z - sg(code)||², which keeps latents near codes"
    )
    update: Literal["ema", "gradient"] = Field(
        "ema",
        description="ema: each code is the running mean of the latents assigned to it; "
        "gradient: codes learn from the codebook loss ||sg(z) - code||²",
    )
    decay: float = Field(0.99, gt=0, lt=1, description="EMA decay (update: ema only)")
    epsilon: float = Field(
        1e-5,
        gt=0,
        description="Laplace smoothing of EMA cluster sizes, so that an empty cluster never "
        "divides by zero (update: ema only)",
    )
    kmeans_init: bool = Field(True, description="place the codes by k-means on the first batch")
    kmeans_iterations: int = Field(10, ge=1)
    dead_code_after: int = Field(
        100, ge=1, description="a code not chosen in this many training batches in a row is dead"
    )
    revive_dead_codes: bool = Field(
        True, description="replace each dead code by a random latent of the current batch"
    )
    backend: Backend = Field(
        "auto",
        description="nearest-code search: a fused Triton kernel on CUDA and chunked torch "
        "elsewhere by default (laser_core.ops.nearest_code)",
    )

    @model_validator(mode="after")
    def _ema_options_need_ema(self) -> CodebookConfig:
        """A changed EMA setting under gradient updates would do nothing: say so."""
        if self.update == "gradient":
            for option in ("decay", "epsilon"):
                default = type(self).model_fields[option].default
                if getattr(self, option) != default:
                    raise ValueError(
                        f"{option} applies only to update: ema, not update: gradient; "
                        "remove it or set update: ema"
                    )
        return self


class VQConfig(CodebookConfig):
    codebook_size: int = Field(512, ge=2, description="number of codes")
    normalize: bool = Field(
        False, description="l2-normalise latents and codes, so nearest means highest cosine"
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

    def vectors(self) -> torch.Tensor:
        """The codes (size, dim) as latents are compared with them; unit length if normalize."""
        return F.normalize(self.weight, dim=1) if self.normalize else self.weight

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Codes (..., dim) for indices (...); differentiable in the codes for update: gradient."""
        return F.embedding(indices, self.vectors())

    @torch.no_grad()
    def assign(self, x: torch.Tensor) -> torch.Tensor:
        """Index (N,) of the nearest code for each row of x (N, dim), without the (N, size)
        distance matrix."""
        return nearest_code(x, self.vectors(), backend=self.config.backend)

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
        if self.initialized:
            return
        centroids = kmeans(x, self.size, self.config.kmeans_iterations)
        self._reset(torch.arange(self.size, device=x.device), centroids)
        self.initialized.fill_(True)

    @torch.no_grad()
    def update(self, x: torch.Tensor, indices: torch.Tensor) -> None:
        """Fold a training batch, x (N, dim) assigned to indices (N,), into the codebook: EMA
        of cluster sizes and sums (Laplace-smoothed), idle counts, and revival candidates."""
        if self.ema:
            counts, sums = cluster_statistics(x, indices, self.size)
            self.cluster_size.lerp_(counts, 1 - self.config.decay)
            self.embed_sum.lerp_(sums, 1 - self.config.decay)
            total = self.cluster_size.sum()
            epsilon = self.config.epsilon
            smoothed = (self.cluster_size + epsilon) / (total + self.size * epsilon) * total
            self.weight.copy_(self.embed_sum / smoothed.unsqueeze(1))
        else:
            counts = all_reduce_sum(torch.bincount(indices, minlength=self.size))
        self.unused_steps.add_(1).masked_fill_(counts > 0, 0)
        if self.config.revive_dead_codes:
            rows = torch.multinomial(x.new_ones(len(x)), self.size, replacement=len(x) < self.size)
            self.candidates = x[rows]

    @torch.no_grad()
    def after_optimizer_step(self) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """Replace dead codes by latents of the last training batch (rank 0's). Done here, not
        in forward, because autograd still needs the codes then; returns the revived rows of a
        gradient-trained codebook so that the trainer resets their optimizer state."""
        candidates, self.candidates = self.candidates, None
        if candidates is None:
            return []
        dead = (self.unused_steps >= self.config.dead_code_after).nonzero().squeeze(1)
        if len(dead) == 0:
            return []
        self._reset(dead, broadcast_from_main(candidates)[: len(dead)])
        return [] if self.ema else [(self.weight, dead)]

    def _reset(self, rows: torch.Tensor, vectors: torch.Tensor) -> None:
        """Move codes ``rows`` to ``vectors``, each weighing as one latent in the EMA."""
        self.weight[rows] = vectors
        self.unused_steps[rows] = 0
        if self.ema:
            self.cluster_size[rows] = 1.0
            self.embed_sum[rows] = vectors

    def stats(self, indices: torch.Tensor) -> dict[str, torch.Tensor]:
        """Usage in this batch (indices of any shape) and dead codes, as float tensors."""
        dead = self.unused_steps >= self.config.dead_code_after
        counts = torch.bincount(indices.flatten(), minlength=self.size)
        return {**usage_stats(counts), "dead_codes": dead.sum().float()}


def usage_stats(counts: torch.Tensor) -> dict[str, torch.Tensor]:
    """Perplexity (exp of the entropy of code frequencies: codebook_size when all codes are
    used alike, 1 when one is) and the number of codes used, from counts per code (size,)."""
    frequencies = counts.float() / counts.sum().clamp(min=1)
    return {
        "perplexity": torch.special.entr(frequencies).sum().exp(),
        "used_codes": (counts > 0).sum().float(),
    }


def to_vectors(z: torch.Tensor) -> torch.Tensor:
    """Latents (batch, dim, height, width) -> fp32 vectors (batch * height * width, dim)."""
    return z.float().permute(0, 2, 3, 1).reshape(-1, z.shape[1])


def to_latent(x: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Vectors (batch * height * width, dim) -> latents of ``shape`` (batch, dim, height, width)."""
    batch, dim, height, width = shape
    return x.view(batch, height, width, dim).permute(0, 3, 1, 2)


def full_precision(z: torch.Tensor) -> torch.autocast:
    """Autocast switched off on z's device: distances and statistics need fp32."""
    return torch.autocast(device_type=z.device.type, enabled=False)


class VectorQuantizer(Bottleneck):
    """Latents (batch, dim, height, width) -> nearest of codebook_size codes at each position;
    codes (batch, height, width, 1). The straight-through estimator hands the encoder the
    decoder's gradient unchanged."""

    def __init__(self, dim: int, config: VQConfig):
        super().__init__()
        self.dim, self.normalize = dim, config.normalize
        self.codebook = Codebook(config.codebook_size, dim, config, normalize=config.normalize)

    def _vectors(self, z: torch.Tensor) -> torch.Tensor:
        x = to_vectors(z)
        return F.normalize(x, dim=1) if self.normalize else x

    def forward(self, z: torch.Tensor) -> BottleneckOutput:
        with full_precision(z):
            x = self._vectors(z)
            if self.training:
                self.codebook.initialize(x)
            indices = self.codebook.assign(x)
            codes = self.codebook.lookup(indices)
            loss = self.codebook.loss(x, codes)
            if self.training:
                self.codebook.update(x.detach(), indices)
            # Adding x - sg(x), exactly zero, keeps the codes' values and x's gradient.
            quantized = to_latent(codes + (x - x.detach()), z.shape).to(z.dtype)
        batch, _, height, width = z.shape
        return BottleneckOutput(
            quantized=quantized,
            loss=loss,
            codes=Codes(indices.view(batch, height, width, 1)),
            stats=self.codebook.stats(indices),
        )

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> Codes:
        batch, _, height, width = z.shape
        with full_precision(z):
            indices = self.codebook.assign(self._vectors(z))
        return Codes(indices.view(batch, height, width, 1))

    def decode(self, codes: Codes) -> torch.Tensor:
        return self.codebook.lookup(codes.indices[..., 0]).permute(0, 3, 1, 2)

    def code_spec(self) -> CodeSpec:
        return CodeSpec(alphabet_sizes=[self.codebook.size])

    def after_optimizer_step(self) -> list[tuple[nn.Parameter, torch.Tensor]]:
        return self.codebook.after_optimizer_step()


def build(config: VQConfig, context: BuildContext) -> VectorQuantizer:
    return VectorQuantizer(context.latent_dim, config)


@hookimpl
def laser_register_bottlenecks(register: Register) -> None:
    register(
        "vq",
        build,
        config=VQConfig,
        summary="vector quantization: nearest of codebook_size codes, EMA or gradient codebook",
    )
