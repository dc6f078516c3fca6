"""What the ``factorized`` and ``hyperprior`` bottlenecks share: their codes are the rounded
latents, handed on as values (batch, height, width, dim)."""

from __future__ import annotations

import torch

from laser_core import Codes, CodeSpec, EntropyCodedBottleneck


def straight_through_round(z: torch.Tensor) -> torch.Tensor:
    """Rounded latents forward, the identity's gradient backward. The decoder trains on the
    integers it will decode, while the rate keeps uniform noise as its differentiable stand-in
    for rounding (Minnen & Singh, 2020): noise in the decoder's input too is a mismatch that
    short trainings never outgrow."""
    return z + (torch.round(z) - z).detach()


def soft_round(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """Yang et al. (2020)'s stochastic Gumbel annealing: each latent moves to a draw between
    its floor and its ceiling, the nearer one more likely, the draw sharpening into rounding
    as ``temperature`` falls, and z keeps a gradient throughout."""
    floor = torch.floor(z).detach()
    fraction = (z - floor).clamp(1e-4, 1 - 1e-4)
    logits = torch.stack((-torch.atanh(fraction), -torch.atanh(1 - fraction)), -1) / temperature
    gumbel = -torch.log(-torch.log(torch.rand_like(logits).clamp(1e-9, 1 - 1e-9)))
    return floor + torch.softmax((logits + gumbel) / temperature, -1)[..., 1]


def rounded_codes(z: torch.Tensor) -> Codes:
    """The codes of latents z (batch, dim, height, width): rounded, channels last, fp32."""
    return Codes(indices=None, values=torch.round(z.detach().float()).permute(0, 2, 3, 1))


class RoundedLatents(EntropyCodedBottleneck):
    """Codes are rounded latents: encode rounds, decode hands them back as latents."""

    refinable = True

    @torch.no_grad()
    def encode(self, z: torch.Tensor) -> Codes:
        return rounded_codes(z)

    def decode(self, codes: Codes) -> torch.Tensor:
        return codes.values.permute(0, 3, 1, 2)

    def code_spec(self) -> CodeSpec:
        return CodeSpec(alphabet_sizes=[], has_values=True)
