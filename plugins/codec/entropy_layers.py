"""The entropy models and GDN of Ballé et al. that the learned codecs train with, written for
LASER with the constructor arguments, forward semantics and state dict keys of CompressAI 1.2.8
(Bégaint et al., 2020), which LASER cannot depend on (it requires numpy<2).

Only the training side is here: the likelihoods that give the rate. LASER codes the bits with
its own integer tables (``laser_core.ops.coding_table``), so CompressAI's coder buffers
(``_offset``, ``_quantized_cdf``, ``_cdf_length``, ``scale_table``) and its ``update()``,
``compress()`` and ``decompress()`` have no counterpart; a state dict saved without those
buffers loads into either implementation. ``tools/check_entropy_layers.py`` compares the two.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["GDN", "EntropyBottleneck", "GaussianConditional", "LowerBound"]

LIKELIHOOD_BOUND = 1e-9
"""The floor under every likelihood, so that a rate never meets log(0)."""
SCALE_BOUND = 0.11
"""The smallest Gaussian scale: below it the unit interval holds nearly all the mass anyway."""


class _LowerBoundFunction(torch.autograd.Function):
    """max(x, bound) whose gradient still passes where it would move x up, away from the
    bound: a value stuck below the bound can recover, which a plain max would forbid."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        x, bound = ctx.saved_tensors
        # Gradient descent moves x by -grad: a negative grad raises x, so it always passes.
        passes = (x >= bound) | (grad < 0)
        return grad * passes, None


class LowerBound(nn.Module):
    """Elementwise max(x, bound) with the pass-through gradient of _LowerBoundFunction."""

    def __init__(self, bound: float):
        super().__init__()
        self.register_buffer("bound", torch.tensor([float(bound)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _LowerBoundFunction.apply(x, self.bound)


class NonNegativeParametrizer(nn.Module):
    """Keeps a parameter at or above ``minimum`` as (max(p, sqrt(minimum + pedestal)))^2 -
    pedestal: the square keeps gradients alive near zero, where a clamp would stall them."""

    def __init__(self, minimum: float = 0.0, reparam_offset: float = 2**-18):
        super().__init__()
        pedestal = reparam_offset**2
        self.register_buffer("pedestal", torch.tensor([pedestal]))
        self.lower_bound = LowerBound((minimum + pedestal) ** 0.5)

    def init(self, value: torch.Tensor) -> torch.Tensor:
        """The parameter whose forward gives ``value``."""
        return torch.sqrt(torch.max(value + self.pedestal, self.pedestal))

    def forward(self, parameter: torch.Tensor) -> torch.Tensor:
        return self.lower_bound(parameter) ** 2 - self.pedestal


class GDN(nn.Module):
    """Generalized divisive normalization (Ballé et al., 2016) on (batch, channels, height,
    width): y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2) at each position, over channels
    only; ``inverse`` multiplies by the root instead, the synthesis transform's inverse GDN."""

    def __init__(
        self,
        in_channels: int,
        inverse: bool = False,
        beta_min: float = 1e-6,
        gamma_init: float = 0.1,
    ):
        super().__init__()
        self.inverse = bool(inverse)
        self.beta_reparam = NonNegativeParametrizer(minimum=beta_min)
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(in_channels)))
        self.gamma_reparam = NonNegativeParametrizer()
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(in_channels)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(channels, channels, 1, 1)
        norm = F.conv2d(x**2, gamma, beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))


def _noisy_or_rounded(values: torch.Tensor, centres: torch.Tensor | None, training: bool):
    """Uniform noise U(-0.5, 0.5) in training, the rate's differentiable stand-in for rounding;
    rounding to the integer grid shifted by ``centres`` in eval."""
    if training:
        return values + torch.empty_like(values).uniform_(-0.5, 0.5)
    if centres is None:
        return torch.round(values)
    return torch.round(values - centres) + centres


class EntropyBottleneck(nn.Module):
    """Ballé et al.'s (2017, 2018) non-parametric factorized density, one per channel: a
    monotone network maps a value to the logit of its cumulative distribution, and a value's
    likelihood is the mass of the unit interval around it.

    ``quantiles`` (channels, 1, 3) track each channel's lower tail, median and upper tail
    (fitted by ``loss()``, not by the rate). Eval rounds to the integers, the symbols LASER
    codes; CompressAI rounds around the medians instead, for its own coder's offsets."""

    def __init__(
        self,
        channels: int,
        init_scale: float = 10,
        filters: tuple[int, ...] = (3, 3, 3, 3),
        tail_mass: float = 1e-9,
    ):
        super().__init__()
        self.channels = int(channels)
        self.filters = tuple(int(width) for width in filters)
        self.init_scale = float(init_scale)
        self.tail_mass = float(tail_mass)
        self.likelihood_lower_bound = LowerBound(LIKELIHOOD_BOUND)

        widths = (1, *self.filters, 1)
        # Each layer scales by about init_scale ** (1 / layers): the initial density spans
        # roughly [-init_scale, init_scale].
        layer_scale = self.init_scale ** (1 / (len(self.filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for layer in range(len(self.filters) + 1):
            inputs, outputs = widths[layer], widths[layer + 1]
            softplus_inverse = math.log(math.expm1(1 / layer_scale / outputs))
            self.matrices.append(
                nn.Parameter(torch.full((channels, outputs, inputs), softplus_inverse))
            )
            self.biases.append(nn.Parameter(torch.empty(channels, outputs, 1).uniform_(-0.5, 0.5)))
            if layer < len(self.filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, outputs, 1)))

        tails = torch.tensor([-self.init_scale, 0.0, self.init_scale])
        self.quantiles = nn.Parameter(tails.repeat(channels, 1, 1))
        tail_logit = math.log(2 / self.tail_mass - 1)
        self.register_buffer("target", torch.tensor([-tail_logit, 0.0, tail_logit]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, channels, height, width) -> (noisy or rounded values, likelihoods), both
        the shape of ``x``."""
        per_channel = x.transpose(0, 1).contiguous()  # the noise drawn in this order
        values = _noisy_or_rounded(per_channel.reshape(self.channels, 1, -1), None, self.training)
        values = values.reshape(per_channel.shape).transpose(0, 1).contiguous()
        return values, self.likelihoods_at(values)

    def likelihoods_at(self, values: torch.Tensor) -> torch.Tensor:
        """The likelihoods (batch, channels, height, width) of values of that shape, taken as
        they are: neither noise nor rounding, so relaxed codes keep their gradient."""
        per_channel = values.transpose(0, 1).contiguous()
        likelihoods = self._likelihood(per_channel.reshape(self.channels, 1, -1))
        likelihoods = self.likelihood_lower_bound(likelihoods)
        return likelihoods.reshape(per_channel.shape).transpose(0, 1).contiguous()

    def loss(self) -> torch.Tensor:
        """The auxiliary loss: moves the quantiles to where the cumulative logits reach the
        tail targets, without moving the density itself."""
        logits = self._cumulative_logits(self.quantiles, detach_density=True)
        return torch.abs(logits - self.target).sum()

    def _cumulative_logits(
        self, values: torch.Tensor, detach_density: bool = False
    ) -> torch.Tensor:
        """values (channels, 1, n) -> logits of each channel's cumulative distribution there."""
        logits = values
        for layer, (matrix, bias) in enumerate(zip(self.matrices, self.biases, strict=True)):
            if detach_density:
                matrix, bias = matrix.detach(), bias.detach()
            logits = torch.matmul(F.softplus(matrix), logits) + bias
            if layer < len(self.factors):
                factor = self.factors[layer].detach() if detach_density else self.factors[layer]
                logits = logits + torch.tanh(factor) * torch.tanh(logits)
        return logits

    def _likelihood(self, values: torch.Tensor) -> torch.Tensor:
        lower = self._cumulative_logits(values - 0.5)
        upper = self._cumulative_logits(values + 0.5)
        # Take the difference on the side of the distribution where both sigmoids are small:
        # in the upper tail 1 - sigmoid(l) keeps the digits that sigmoid(l) rounds to 1.
        sign = torch.where(lower + upper > 0, -1.0, 1.0).detach()
        return torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))


class GaussianConditional(nn.Module):
    """The hyperprior's latent density (Ballé et al., 2018): each value's likelihood is the
    mass of the unit interval around it under N(mean, scale), the scale bounded below by
    SCALE_BOUND. Eval rounds around the means."""

    def __init__(self, scale_table: None = None):
        super().__init__()
        if scale_table is not None:
            raise ValueError(
                "GaussianConditional: LASER codes with its own tables "
                "(plugins/codec/densities.py), so a scale_table has no use; pass None."
            )
        self.likelihood_lower_bound = LowerBound(LIKELIHOOD_BOUND)
        self.lower_bound_scale = LowerBound(SCALE_BOUND)
        # Kept as its own buffer only so that the state dict has CompressAI's keys.
        self.register_buffer("scale_bound", torch.tensor([SCALE_BOUND]))

    def forward(
        self, values: torch.Tensor, scales: torch.Tensor, means: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """values, scales and means of one shape -> (noisy or rounded values, likelihoods)."""
        values = _noisy_or_rounded(values, means, self.training)
        return values, self.likelihoods_at(values, scales, means)

    def likelihoods_at(
        self, values: torch.Tensor, scales: torch.Tensor, means: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The likelihoods of values taken as they are (neither noise nor rounding)."""
        centred = values if means is None else values - means
        scales = self.lower_bound_scale(scales)
        # The mass of [|v| - 0.5, |v| + 0.5] taken in the lower tail, where it keeps its digits.
        distance = torch.abs(centred)
        likelihoods = _normal_cdf((0.5 - distance) / scales) - _normal_cdf(
            (-0.5 - distance) / scales
        )
        return self.likelihood_lower_bound(likelihoods)


def _normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """The standard normal CDF through erfc, exact far into the lower tail."""
    return 0.5 * torch.erfc(-(2**-0.5) * x)
